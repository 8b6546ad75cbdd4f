package dev.hanlin.torch.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * The one way Hanlin writes a file that must never be seen half-written: the bytes go to a
 * temporary file beside the target, are forced to disk, the temporary is renamed over the target in
 * one step, and the folder is forced so that the rename survives a crash. On a failure the
 * temporary is removed and an existing target is left as it was. Checkpoint, model, tokenizer,
 * dataset and metrics writers all go through here.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** The body of an atomic write: fills the open temporary file. */
  @FunctionalInterface
  public interface Body {
    void writeTo(FileChannel ch) throws IOException;
  }

  /** The temporary name used while {@code target} is being written: {@code <name>.tmp}. */
  public static Path temp(Path target) {
    return target.resolveSibling(target.getFileName() + ".tmp");
  }

  /** Writes {@code bytes} to {@code target} atomically. */
  public static void write(Path target, byte[] bytes) throws IOException {
    write(target, ch -> writeFully(ch, ByteBuffer.wrap(bytes)));
  }

  /** Writes {@code text} as UTF-8 to {@code target} atomically. */
  public static void writeString(Path target, CharSequence text) throws IOException {
    write(target, text.toString().getBytes(StandardCharsets.UTF_8));
  }

  /** Writes {@code target} atomically through {@link #temp}. */
  public static void write(Path target, Body body) throws IOException {
    write(target, temp(target), body);
  }

  /**
   * Writes {@code target} atomically through the temporary file {@code tmp}, which must be in the
   * same folder; an old file of that name is replaced.
   */
  public static void write(Path target, Path tmp, Body body) throws IOException {
    boolean done = false;
    try {
      try (FileChannel ch =
          FileChannel.open(
              tmp,
              StandardOpenOption.CREATE,
              StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.WRITE)) {
        body.writeTo(ch);
        ch.force(true);
      }
      commit(tmp, target);
      done = true;
    } finally {
      if (!done) Files.deleteIfExists(tmp);
    }
  }

  /**
   * Writes {@code text} as UTF-8 to {@code file} and forces it to disk, without a rename: for files
   * inside a temporary folder that is itself committed with {@link #commit} once complete.
   */
  public static void writeSynced(Path file, String text) throws IOException {
    try (FileChannel ch =
        FileChannel.open(
            file,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      writeFully(ch, ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)));
      ch.force(true);
    }
  }

  /**
   * Renames a fully written and forced {@code tmp} (a file, or a folder whose files are) over
   * {@code target} in one step and forces the folder holding them. A folder can only replace an
   * empty one.
   */
  public static void commit(Path tmp, Path target) throws IOException {
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("the file system cannot rename atomically: " + target, e);
    }
    fsyncDirectory(target.toAbsolutePath().getParent());
  }

  /** Forces a folder's entries to disk; some file systems refuse, and then this does nothing. */
  public static void fsyncDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Some file systems cannot open or sync a folder; the rename itself is still atomic.
    }
  }

  /** Writes all of {@code buf}: one {@code write} call may write less. */
  public static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) ch.write(buf);
  }
}
