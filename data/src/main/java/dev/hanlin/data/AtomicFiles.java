package dev.hanlin.data;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Nothing is ever half-written: every output goes to a temporary file beside its target, is
 * fsynced, renamed over the target in one step, and the folder is fsynced so the rename survives a
 * crash.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** The temporary name used while {@code target} is being written. */
  public static Path temp(Path target) {
    return target.resolveSibling(target.getFileName() + ".tmp");
  }

  /** Writes {@code bytes} to {@code target} atomically. */
  public static void write(Path target, byte[] bytes) throws IOException {
    Path tmp = temp(target);
    try (FileChannel ch =
        FileChannel.open(
            tmp,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      var buf = java.nio.ByteBuffer.wrap(bytes);
      while (buf.hasRemaining()) ch.write(buf);
      ch.force(true);
    }
    commit(tmp, target);
  }

  /** Renames a fully written and fsynced {@code tmp} over {@code target} and fsyncs the folder. */
  public static void commit(Path tmp, Path target) throws IOException {
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("the file system cannot rename atomically: " + target, e);
    }
    fsyncDirectory(target.toAbsolutePath().getParent());
  }

  public static void fsyncDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Some file systems refuse to open or sync a folder; the rename itself is still atomic.
    }
  }
}
