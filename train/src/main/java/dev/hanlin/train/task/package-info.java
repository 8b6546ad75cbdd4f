/**
 * What a run trains on ({@link dev.hanlin.train.task.Task}): {@code Pretraining} (prepared token
 * shards, packed blocks) and {@code SftTask} (instruction samples, responses only). A task owns its
 * data, batch source, the loss's divisor over the ranks, evaluation and the export.
 */
package dev.hanlin.train.task;
