"""Loads a Hanlin run's TensorBoard folder with TensorBoard's own loader and prints the scalars.

Proof that the hand-written event files (train/.../metrics/EventFile.java) are what TensorBoard
reads. Usage, on a machine with tensorboard installed (pip install tensorboard):

    python test-data/metrics/check_tensorboard.py OUTPUT/runs [--expect-steps N]

Exits non-zero when there are no scalars, when a step appears twice in a tag (a resumed run's
duplicates were not purged), or when --expect-steps is given and train/loss does not hold
exactly steps 1..N (minus skipped ones is not allowed here: pass a run without skips).
"""
import argparse
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir", help="the run's runs/ folder (or one event file)")
    ap.add_argument("--expect-steps", type=int, default=None)
    args = ap.parse_args()

    acc = EventAccumulator(args.logdir, size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    if not tags:
        print(f"no scalars in {args.logdir}", file=sys.stderr)
        return 1
    failed = False
    for tag in tags:
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        first, last = events[0], events[-1]
        print(f"{tag:28s} {len(events):6d} points  steps {steps[0]}..{steps[-1]}  "
              f"first {first.value:.6g}  last {last.value:.6g}")
        if len(set(steps)) != len(steps):
            print(f"  duplicate steps in {tag}", file=sys.stderr)
            failed = True
    if args.expect_steps is not None:
        steps = [e.step for e in acc.Scalars("train/loss")]
        if steps != list(range(1, args.expect_steps + 1)):
            print(f"train/loss steps {steps[:5]}... != 1..{args.expect_steps}", file=sys.stderr)
            failed = True
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
