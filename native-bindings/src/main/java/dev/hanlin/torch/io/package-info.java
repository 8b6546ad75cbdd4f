/**
 * File and console output that every module shares: {@link dev.hanlin.torch.io.AtomicFiles}, the
 * one way a file is written so that no reader or crash ever sees it half-written (temporary file,
 * fsync, rename, fsync of the folder), and {@link dev.hanlin.torch.io.ProgressLine}, the one
 * console status line under prepare's bar, extend-vocab's phase bars and the training progress.
 * They live here because native-bindings is the module that data, model and train all depend on.
 */
package dev.hanlin.torch.io;
