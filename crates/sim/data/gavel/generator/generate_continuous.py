#!/usr/bin/env python3
"""Writes Gavel's continuous-single (or -multiple) job stream as a 7-field Gavel trace.

The jobs are the ones Gavel's simulator generates for `run_sweep_continuous.py` (Narayanan et al.,
OSDI'20, section 7.2; stanford-futuredata/gavel commit c4fa400, `scheduler/scheduler.py`
`Scheduler.simulate` with `lam`, `scheduler/utils.py` `generate_job`): the same Python `random`
generators seeded as Gavel seeds them (`seed + 2` for jobs, `seed + 3` for inter-arrival times),
drawn in the same order, so job `i` here is job `i` of Gavel's run for that seed and rate.

- scale factor: 1, or with --multi-gpu Philly's 2 (10%), 4 (15%), 8 (5%) for models that can
  run distributed (`_generate_scale_factor`);
- duration on one V100: 60 * 10^U(1.5, 3) s with probability 0.8, else 60 * 10^U(3, 4) s
  (`_generate_duration`); total steps = duration * measured V100 steps/s;
- model: uniform over Gavel's 26 job templates (`job_table.py`, copied here, MIT);
- arrivals: first at 0, then exponential gaps of mean 3600 / rate s.

Usage: generate_continuous.py --rate 3.2 --seed 0 --jobs 6000 > trace
(`job_table.py` and `job_template.py` are Gavel's, MIT licence, `../LICENSE`.)
"""

import argparse
import json
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from job_table import JobTable  # noqa: E402


def scale_factor_of(rng):
    r = rng.uniform(0, 1)
    if 0.7 <= r <= 0.8:
        return 2
    if 0.8 <= r <= 0.95:
        return 4
    if 0.95 <= r:
        return 8
    return 1


def duration_s_of(rng):
    if rng.random() >= 0.8:
        return 60 * (10 ** rng.uniform(3, 4))
    return 60 * (10 ** rng.uniform(1.5, 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="jobs per hour")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=6000)
    parser.add_argument("--multi-gpu", action="store_true")
    here = os.path.dirname(os.path.realpath(__file__))
    parser.add_argument(
        "--throughputs",
        default=os.path.join(here, "..", "simulation_throughputs.json"),
    )
    args = parser.parse_args()
    if not (args.rate > 0 and args.jobs > 0):
        sys.exit("--rate and --jobs must be positive")
    with open(args.throughputs) as f:
        v100 = json.load(f)["v100"]
    lam = 3600.0 / args.rate
    jobs = random.Random()
    jobs.seed(args.seed + 2)
    gaps = random.Random()
    gaps.seed(args.seed + 3)
    arrival_s = 0.0
    out = sys.stdout
    for _ in range(args.jobs):
        # `generate_job` with always_generate_scale_factor=True: scale factor, duration, model.
        scale_factor = scale_factor_of(jobs)
        run_time_s = duration_s_of(jobs)
        if not args.multi_gpu:
            scale_factor = 1
        while True:
            template = jobs.choice(JobTable)
            if scale_factor == 1 or template.distributed:
                break
        key = str((template.model, scale_factor))
        steps = run_time_s * v100[key]["null"]
        out.write(
            "%s\t%s\t%s\t%d\t%d\t%f\t%d\n"
            % (
                template.model,
                template.command.replace("%s", "DATA"),
                template.num_steps_arg,
                1 if template.needs_data_dir else 0,
                max(1, int(steps)),
                arrival_s,
                scale_factor,
            )
        )
        arrival_s += -math.log(1.0 - gaps.random()) * lam


if __name__ == "__main__":
    main()
