"""The command line shared by the scripts that time two VGG-16 variants against each
other (bench_winograd_vgg16.py, bench_pool_fusion.py): thread count, number of rounds,
batch, and --cpu-time (the calling thread's CPU time, which a shared machine disturbs
less, so 1 thread only). Sets the thread count and prints the load."""
import argparse
import os
import time

import fastconv as fc


def parse(doc, rounds_flag, rounds_default):
    """(args, clock): args.threads, args.batch, args.cpu_time and the rounds under the
    name of rounds_flag ("--rounds" -> args.rounds)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(rounds_flag, type=int, default=rounds_default)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the calling thread's CPU time (needs --threads 1)")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time measures one thread: use --threads 1")
    fc.set_num_threads(args.threads)
    print("uptime:", os.popen("uptime").read().strip())
    return args, (time.thread_time if args.cpu_time else time.perf_counter)
