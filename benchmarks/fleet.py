# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet benchmark: playbooks/byok.yml for N synthetic customers against a private local AWS, and plain boto3.

    python benchmarks/fleet.py [--sizes 10,50,200] [--repeat 3] [--apply | --apply-sizes 10] [--forks 20] [--set ANSIBLE_PIPELINING=1]
    python benchmarks/fleet.py --watch [--sizes 10,50,200]

With --watch it times playbooks/key_watch.yml instead (twice per N: the first run keeps a state for every customer,
the second is the steady state of a scheduled watch, which is the figure), beside the watch's reads in plain boto3.

For each N (ascending) it seeds customers up to N (the first N of one synthetic fleet, so each size adds to the
last), then times
  * `ansible-playbook playbooks/byok.yml --check` (the plan and the audit) for the N customers,
  * the same reads from plain boto3 (benchmarks/fleet_boto3.py), and
  * with --apply: a full apply of byok.yml on a freshly seeded server with the same N customers (--apply-sizes: only
    for these sizes; an apply copies every object and moves every database, so it is the long part),
and prints seconds per customer, the ratio Ansible/boto3 and how the time per customer grows with N.
The playbook is whatever playbooks/byok.yml is when it runs: every role wired into it is measured.

Customers have the demo's shapes in turn: one key for all services, a key per service, selective enablement
(S3 and RDS only, in us-west-2), a global database over two regions. Buckets hold a handful of small objects.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from benchmarks.fleet_boto3 import read_fleet  # noqa: E402 pylint: disable=wrong-import-position
from tests.local_aws.harness import LocalAWS  # noqa: E402 pylint: disable=wrong-import-position

DEMO_GROUP_VARS = REPO_ROOT / "inventories" / "demo" / "group_vars" / "dedicated.yml"
DEMO_PROFILES = REPO_ROOT / "tests" / "local_aws" / "fixtures" / "demo-profiles.yml"
SHAPES = ("one_key", "key_per_service", "selective", "global_db")
AUTOSCALING_ROLE = "arn:aws:iam::{provider}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
# A handful of small objects per bucket: the benchmark measures calls, not bytes.
S3_OBJECTS = {"catalogues": [{"name": "bench", "buckets": "*", "objects": [
    {"key": "exports/", "size": 0, "content_type": "application/x-directory"},
    {"key": ".mattermost-healthcheck", "size": 3, "content_type": "text/plain; charset=utf-8"},
    {"key": "data/{day}/{channel}/{file}/notes.txt", "count": 3, "size": "2KiB", "content_type": "text/plain"},
]}]}
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
                   r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)", re.M)


# -- the synthetic fleet ----------------------------------------------------------------------------------------

def customer(index: int, provider: str, state_store: str, assume_role_arn: str) -> dict:
    """Customer number `index`: its host_vars and what the boto3 baseline reads for it."""
    shape = SHAPES[index % len(SHAPES)]
    name = f"bench{index:04d}"
    account = f"3333{index:08d}"
    region = "us-west-2" if shape == "selective" else "us-east-1"

    def key(n, key_region=region):
        return {"arn": f"arn:aws:kms:{key_region}:{account}:key/be{index:06x}-0000-4000-8000-00000000000{n}", "region": key_region}

    host_vars = {"byok_customer_account_id": account, "byok_region": region, "byok_vpc_id": f"vpc-0be{index:014x}",
                 "byok_kops_cluster_id": f"{name}", "byok_s3_buckets": [f"mattermost-{name}-filestore"],
                 "byok_rds_clusters": [{"identifier": f"{name}-db", "region": region}]}
    if shape == "one_key":
        host_vars.update(byok_services=["s3", "rds", "ebs"], byok_keys={"all": key(1)["arn"]})
        keys = [key(1)]
    elif shape == "key_per_service":
        host_vars.update(byok_services=["s3", "rds", "ebs"], byok_keys={"s3": key(1)["arn"], "rds": key(1)["arn"], "ebs": key(2)["arn"]})
        keys = [key(1), key(2)]
    elif shape == "selective":
        host_vars.update(byok_services=["s3", "rds"], byok_keys={"all": key(1)["arn"]})
        keys = [key(1)]
    else:
        west = key(2, "us-west-2")
        host_vars.update(byok_services=["s3", "rds", "ebs"], byok_keys={"all": key(1)["arn"], "rds_regions": {"us-west-2": west["arn"]}},
                         byok_rds_global_cluster=f"{name}-global",
                         byok_rds_clusters=[{"identifier": f"{name}-db", "region": region},
                                            {"identifier": f"{name}-db-west", "region": "us-west-2"}])
        keys = [key(1), west]
    reads = {"name": name, "region": region, "assume_role_arn": assume_role_arn, "distinct_keys": keys,
             "autoscaling_role": AUTOSCALING_ROLE.format(provider=provider), "buckets": host_vars["byok_s3_buckets"],
             "rds_clusters": host_vars["byok_rds_clusters"], "cluster_name": f"{name}-kops.k8s.local", "state_store": state_store,
             "ebs": "ebs" in host_vars["byok_services"]}
    return {"name": name, "shape": shape, "host_vars": host_vars, "reads": reads}


def fleet(size: int) -> list[dict]:
    group = yaml.safe_load(DEMO_GROUP_VARS.read_text())
    store = group["byok_kops_state_store"][len("s3://"):].split("/")[0]
    return [customer(i, group["byok_provider_account_id"], store, group["byok_assume_role_arn"]) for i in range(1, size + 1)]


def write_inventory(directory: Path, customers: list[dict]) -> Path:
    """An inventory of the demo's layout: hosts.yml, group_vars/dedicated.yml (the demo's), host_vars/<customer>.yml."""
    (directory / "host_vars").mkdir(parents=True, exist_ok=True)
    (directory / "group_vars").mkdir(exist_ok=True)
    (directory / "group_vars" / "dedicated.yml").write_text(DEMO_GROUP_VARS.read_text())
    hosts = {"all": {"children": {"dedicated": {"hosts": {c["name"]: None for c in customers}}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    for c in customers:
        path = directory / "host_vars" / f"{c['name']}.yml"
        if not path.exists():
            path.write_text(yaml.safe_dump(c["host_vars"], sort_keys=False))
    return directory / "hosts.yml"


# -- seeding ----------------------------------------------------------------------------------------------------

def write_profiles(path: Path) -> None:
    """The demo's seeding defaults, with the Blue/Green prerequisite met, so that the apply can move every database."""
    profiles = yaml.safe_load(DEMO_PROFILES.read_text())
    profiles["defaults"]["logical_replication"] = True
    profiles["customers"] = {}
    path.write_text(yaml.safe_dump(profiles))


def seed(aws: LocalAWS, inventory_dir: Path, names: list[str], processes: int, objects_file: Path) -> float:
    """Seed `names` with tests.local_aws.demo_fleet, in `processes` processes each seeding a slice.

    The first customers (one of each shape, so every region) go alone: they also seed the provider account
    (roles, keys per region, state store), which concurrent seeders would race to create."""
    started = time.monotonic()
    first, rest = names[:len(SHAPES)], names[len(SHAPES):]
    slices = [rest[i::processes] for i in range(processes) if rest[i::processes]]

    profiles_file = objects_file.with_name("profiles.yml")
    if not profiles_file.exists():
        write_profiles(profiles_file)

    def one(chunk):
        cmd = [sys.executable, "-m", "tests.local_aws.demo_fleet", "--endpoint-url", aws.endpoint_url, "--inventory", str(inventory_dir),
               "--s3-objects", str(objects_file), "--profiles", str(profiles_file), "--workers", "4", "--limit", ",".join(chunk)]
        done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode:
            raise RuntimeError(f"seeding failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")

    if first:
        one(first)
    with ThreadPoolExecutor(max_workers=len(slices) or 1) as pool:
        list(pool.map(one, slices))
    return time.monotonic() - started


def save_key_policies(aws: LocalAWS, inventory_dir: Path, customers: list[dict]) -> None:
    """key-policies/<key id>.json as each customer saved it (read as the customer's account): KMS lets no other
    account read a key policy, so byok_key checks the saved document, as for the demo."""
    folder = inventory_dir / "key-policies"
    folder.mkdir(exist_ok=True)

    def one(c):
        for key in c["reads"]["distinct_keys"]:
            kms = aws.client("kms", account=c["host_vars"]["byok_customer_account_id"], region=key["region"])
            policy = kms.get_key_policy(KeyId=key["arn"], PolicyName="default")["Policy"]
            (folder / f"{key['arn'].rsplit('/', 1)[1]}.json").write_text(json.dumps(json.loads(policy), indent=2) + "\n")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, customers))


# -- timing -----------------------------------------------------------------------------------------------------

def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ansible_env(aws: LocalAWS, artifacts: Path, settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "BYOK_ARTIFACTS_DIR": str(artifacts),
                "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".collections"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,mattermost.byok.prepare_workers"})
    env.update(settings)
    return env


def run_playbook(aws: LocalAWS, inventory: Path, work: Path, label: str, check: bool, forks: int | None,
                 settings: dict[str, str], playbook: Path) -> dict:
    """Time byok.yml; the run counts when every customer of the inventory finished without failing."""
    artifacts = work / f"artifacts-{label}"
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(playbook)]
    cmd += ["--check"] if check else []
    cmd += ["--forks", str(forks)] if forks else []
    cpu, started = children_cpu(), time.monotonic()
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=ansible_env(aws, artifacts, settings), capture_output=True, text=True,
                          timeout=7200, check=False)
    seconds = time.monotonic() - started
    log = work / f"{label}.log"
    log.write_text(done.stdout + done.stderr)
    recap = {m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"} for m in RECAP.finditer(done.stdout)}
    failed = sorted(h for h, r in recap.items() if r["failed"] or r["unreachable"] or r["rescued"])
    return {"seconds": seconds, "cpu_seconds": children_cpu() - cpu, "rc": done.returncode, "failed": failed,
            "task_hosts": sum(r["ok"] + r["skipped"] + r["failed"] for r in recap.values()), "log": str(log),
            "slowest_tasks": slowest_tasks(done.stdout)}


def slowest_tasks(output: str, count: int = 8) -> list[str]:
    """profile_tasks' recap lines (the slowest tasks, summed over customers)."""
    lines = output.split("TASKS RECAP", 1)[-1].splitlines()
    return [line.strip() for line in lines if re.search(r"-+ \d+\.\d+s$", line)][:count]


# -- the run ----------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python benchmarks/fleet.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="10,50,200", help="fleet sizes, ascending (default: %(default)s)")
    parser.add_argument("--apply", action="store_true", help="also time a full apply on a fresh seed for each size")
    parser.add_argument("--apply-sizes", default="", help="time the full apply only for these sizes (e.g. 10,50)")
    parser.add_argument("--forks", type=int, default=None, help="ansible-playbook --forks (default: ansible.cfg)")
    parser.add_argument("--concurrency", type=int, default=20, help="customers the boto3 baseline reads at once (default: %(default)s)")
    parser.add_argument("--seed-processes", type=int, default=2, help="seeding processes (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="environment for ansible-playbook, e.g. ANSIBLE_PIPELINING=1 (repeatable)")
    parser.add_argument("--endpoint-url", default=None, help="use this (empty, disposable) local AWS instead of starting one")
    parser.add_argument("--work-dir", default=None, help="keep inventories, logs and reports here (default: a temporary directory)")
    parser.add_argument("--playbook", type=Path, default=REPO_ROOT / "playbooks" / "byok.yml",
                        help="the playbook to time (default: playbooks/byok.yml; e.g. a committed version of it)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time the playbook and boto3 this many times per size on the same seed; the median is the figure")
    parser.add_argument("--watch", action="store_true", help="time playbooks/key_watch.yml and the watch's reads instead")
    args = parser.parse_args(argv)
    if args.watch:
        if args.apply or args.apply_sizes:
            parser.error("--watch: the key watch is read-only; time an apply without --watch")
        if args.playbook == REPO_ROOT / "playbooks" / "byok.yml":
            args.playbook = REPO_ROOT / "playbooks" / "key_watch.yml"
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    args.settings = dict(s.split("=", 1) for s in args.set)
    args.apply_sizes = {int(s) for s in args.apply_sizes.split(",") if s.strip()} or (set(args.sizes) if args.apply else set())
    args.apply = bool(args.apply_sizes)
    return args


def median(runs: list[dict]) -> dict:
    """The run of median time (of an odd number; the lower middle of an even one)."""
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def measure(args, aws: LocalAWS, work: Path) -> list[dict]:
    objects_file = work / "s3-objects.yml"
    objects_file.write_text(yaml.safe_dump(S3_OBJECTS))
    full = fleet(max(args.sizes))
    rows, seeded, previous = [], 0, 0
    for size in args.sizes:
        customers = full[:size]
        inventory_dir = work / f"inventory-{size}"
        inventory = write_inventory(inventory_dir, customers)
        if seeded:  # policies saved for the smaller fleet
            (inventory_dir / "key-policies").mkdir(exist_ok=True)
            for path in (work / f"inventory-{previous}" / "key-policies").glob("*.json"):
                (inventory_dir / "key-policies" / path.name).write_text(path.read_text())
        seed_seconds = seed(aws, inventory_dir, [c["name"] for c in customers[seeded:]], args.seed_processes, objects_file)
        save_key_policies(aws, inventory_dir, customers[seeded:])
        seeded_now, seeded = size - seeded, size
        print(f"N={size}: seeded {seeded_now} customers in {seed_seconds:.1f} s", flush=True)
        if args.watch:
            first = run_playbook(aws, inventory, work, f"watch-first-{size}", False, args.forks, args.settings, args.playbook)
            print(f"N={size}: key_watch.yml first run {first['seconds']:.1f} s (rc {first['rc']})", flush=True)
        checks = []
        for attempt in range(1, args.repeat + 1):
            checks.append(run_playbook(aws, inventory, work, f"{'watch' if args.watch else 'check'}-{size}-{attempt}", not args.watch,
                                       args.forks, args.settings, args.playbook))
            print(f"N={size}: {args.playbook.name}{'' if args.watch else ' --check'} {checks[-1]['seconds']:.1f} s "
                  f"(rc {checks[-1]['rc']}, {len(checks[-1]['failed'])} failed)", flush=True)
        check = median(checks)
        if not check["task_hosts"]:  # the playbook did not start (a syntax or role error): no figure to take
            print(Path(check["log"]).read_text()[-3000:], file=sys.stderr)
            rows.append({"n": size, "seed_seconds": seed_seconds, "seeded": seeded_now, "check": check,
                         "boto3": {"seconds": float("nan"), "cpu_seconds": 0.0, "calls": 0}})
            break
        bases = []
        for _attempt in range(args.repeat):
            bases.append(read_fleet(aws.endpoint_url, {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
                                    [c["reads"] for c in customers], args.concurrency, watch=args.watch))
            print(f"N={size}: boto3 {bases[-1]['seconds']:.1f} s ({bases[-1]['calls']} calls)", flush=True)
        base = median(bases)
        row = {"n": size, "seed_seconds": seed_seconds, "seeded": seeded_now, "check": check, "boto3": base,
               "check_seconds": [c["seconds"] for c in checks], "boto3_seconds": [b["seconds"] for b in bases]}
        if size in args.apply_sizes:
            aws.reset()
            row["apply_seed_seconds"] = seed(aws, inventory_dir, [c["name"] for c in customers], args.seed_processes, objects_file)
            row["apply"] = run_playbook(aws, inventory, work, f"apply-{size}", False, args.forks, args.settings, args.playbook)
            print(f"N={size}: byok.yml apply {row['apply']['seconds']:.1f} s (rc {row['apply']['rc']})", flush=True)
            seeded = size
        rows.append(row)
        previous = size
    return rows


def report(rows: list[dict], args) -> str:
    out = [f"\nFleet benchmark: {args.playbook} against the local AWS, {os.cpu_count()} CPUs, "
           f"forks {args.forks or 'ansible.cfg'}{', ' + ', '.join(args.set) if args.set else ''}",
           f"{'N':>5} {'seed s':>8} {'watch s' if args.watch else 'check s':>8} {'s/cust':>7} {'cpu s/cust':>10} {'task-hosts/cust':>15} "
           f"{'boto3 s':>8} {'s/cust':>7} {'ratio':>6}" + (f" {'apply s':>8} {'s/cust':>7}" if args.apply else "") + "  failed"]
    for r in rows:
        n, c, b = r["n"], r["check"], r["boto3"]
        line = (f"{n:>5} {r['seed_seconds']:>8.1f} {c['seconds']:>8.1f} {c['seconds'] / n:>7.2f} {c['cpu_seconds'] / n:>10.2f} "
                f"{c['task_hosts'] / n:>15.1f} {b['seconds']:>8.1f} {b['seconds'] / n:>7.3f} {c['seconds'] / b['seconds']:>6.1f}")
        if args.apply:
            line += f" {r['apply']['seconds']:>8.1f} {r['apply']['seconds'] / n:>7.2f}" if "apply" in r else f" {'-':>8} {'-':>7}"
        if len(r.get("check_seconds", [])) > 1:
            line += f"  (median of {', '.join(f'{x:.1f}' for x in r['check_seconds'])} s; boto3 {', '.join(f'{x:.1f}' for x in r['boto3_seconds'])} s)"
        failed = c["failed"] + (r["apply"]["failed"] if "apply" in r else [])
        line += f"  {', '.join(failed[:5]) or '-'}{'' if c['rc'] == 0 else ' (rc ' + str(c['rc']) + ')'}"
        out.append(line)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = (last["check"]["seconds"] / last["n"]) / (first["check"]["seconds"] / first["n"])
        out.append(f"Time per customer N={first['n']} -> N={last['n']}: x{growth:.2f} "
                   f"({'flat' if 0.8 <= growth <= 1.25 else 'grows' if growth > 1 else 'falls'}; "
                   f"total time x{last['check']['seconds'] / first['check']['seconds']:.1f} for x{last['n'] / first['n']:.0f} customers)")
    out.append(f"Slowest tasks at N={rows[-1]['n']} (profile_tasks, summed over customers):")
    out += [f"  {t}" for t in rows[-1]["check"]["slowest_tasks"]]
    return "\n".join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="byok-fleet-") as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.endpoint_url:
            aws = LocalAWS(args.endpoint_url)
            aws.reset()
        else:
            aws = LocalAWS.start(log_path=work / "local-aws.log", timeout=60)
        try:
            rows = measure(args, aws, work)
        finally:
            aws.stop()
        print(report(rows, args))
        if args.json:
            Path(args.json).write_text(json.dumps({"sizes": args.sizes, "settings": args.settings, "forks": args.forks,
                                                   "cpus": os.cpu_count(), "rows": rows}, indent=2))
        ok = all(r["check"]["rc"] == 0 and not r["check"]["failed"] and ("apply" not in r or r["apply"]["rc"] == 0) for r in rows)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
