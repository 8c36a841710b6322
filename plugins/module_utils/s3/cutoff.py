# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an object's last-modified time alone says about its key, and when it says nothing.

The bucket default is on the key from the cutoff (server time, kept in the checkpoint). Time alone proves an object
is on the key only when:
- it was modified after the cutoff's own second (LastModified has one-second resolution), and
- after the margin: bucket configuration is eventually consistent on AWS, so a write shortly after
  PutBucketEncryption may still get the old default (https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html
  #ConsistencyModel: "Bucket configurations have an eventual consistency model"), and
- no writer of the bucket can name another encryption: a request header such as the Mattermost server's
  `x-amz-server-side-encryption: AES256` overrides the default. Only when every writer is known to send none
  (`writers_follow_default`) is the time trusted.
Otherwise the object is read (HEAD). Objects modified before the cutoff's second are older than the key.
"""

from __future__ import annotations

# Seconds after the cutoff in which a write may still have been given the old default. AWS gives no figure for
# default encryption; 15 minutes is what it asks to wait after enabling versioning (PutBucketVersioning).
DEFAULT_MARGIN = 900


def time_says(modified: float, cutoff: float | None, margin: float, writers_follow_default: bool) -> str:
    """before | after | unknown: `after` means on the key without reading it."""
    if cutoff is None:
        return "unknown"
    second, cut = int(modified), int(cutoff)
    if second < cut:
        return "before"
    if writers_follow_default and second > cut + max(0, int(margin)):
        return "after"
    return "unknown"
