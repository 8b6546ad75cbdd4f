/**
 * How the ranks of a run share one optimizer step, behind {@link
 * dev.hanlin.train.parallel.Parallelism}: {@code Single} (one process), {@code Ddp} (libtorch's
 * c10d Reducer averages every gradient, overlapped with backward), {@code Zero1} (DDP's gradients;
 * each rank keeps the AdamW state of and updates only its share, {@code Shards}' owner policy) and
 * {@code Zero2} (each gradient reduced onto its owner as the recomputing backward finishes a
 * block). The collectives themselves are native-bindings' {@code Group}. Parameter sharding (FSDP /
 * ZeRO-3) is the next implementation of the same interface.
 */
package dev.hanlin.train.parallel;
