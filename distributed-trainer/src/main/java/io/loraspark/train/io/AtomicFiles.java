package io.loraspark.train.io;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * File writes that readers never see half done: the bytes go to a temp file in the target's
 * directory, are synced, and are renamed over the target atomically (then the directory is synced).
 * Also the recursive delete the writers of checkpoint and adapter directories share.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** Writes the content of a temp file; the channel is synced and closed by the caller. */
  @FunctionalInterface
  public interface Content {
    void writeTo(FileChannel channel) throws IOException;
  }

  /**
   * Writes {@code text} as UTF-8 to {@code file}, replacing it atomically.
   *
   * @throws UncheckedIOException naming the file if writing, syncing or renaming fails; any
   *     existing {@code file} is then left as it was
   */
  public static void writeString(Path file, String text) {
    write(file, text.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Copies {@code source} to {@code target}, replacing {@code target} atomically.
   *
   * @throws UncheckedIOException naming the file that could not be read or written
   */
  public static void copy(Path source, Path target) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(source);
    } catch (IOException e) {
      throw new UncheckedIOException(source + ": cannot read: " + e, e);
    }
    write(target, bytes);
  }

  private static void write(Path file, byte[] bytes) {
    write(file, ch -> writeFully(ch, ByteBuffer.wrap(bytes)));
  }

  /**
   * Writes {@code file} through {@code content} into a temp file beside it, syncs it, renames it
   * over {@code file} atomically and syncs the directory.
   *
   * @throws UncheckedIOException naming the file if writing, syncing or renaming fails; any
   *     existing {@code file} is then left as it was and the temp file is removed
   */
  public static void write(Path file, Content content) {
    Path dir = file.toAbsolutePath().getParent();
    Path tmp = dir.resolve("." + file.getFileName() + "." + UUID.randomUUID() + ".tmp");
    try {
      try (FileChannel ch =
          FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        content.writeTo(ch);
        FaultPoints.written(ch.size());
        ch.force(true);
      }
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      UncheckedIOException u = new UncheckedIOException(file + ": cannot write: " + e, e);
      deleteQuietly(tmp, u);
      throw u;
    } catch (RuntimeException | Error e) {
      deleteQuietly(tmp, e);
      throw e;
    }
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    } catch (IOException e) {
      throw new UncheckedIOException(
          file + ": written, but syncing directory " + dir + " failed: " + e, e);
    }
  }

  /** Writes all of {@code buf}. */
  public static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
  }

  /** Removes a leftover temp file; a failure to do so is attached to {@code primary}. */
  private static void deleteQuietly(Path tmp, Throwable primary) {
    try {
      Files.deleteIfExists(tmp);
    } catch (IOException e) {
      primary.addSuppressed(e);
    }
  }

  /**
   * Creates {@code dir} and its parents if needed.
   *
   * @throws UncheckedIOException naming the directory if it cannot be created
   */
  public static void createDirectories(Path dir) {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot create directory: " + e, e);
    }
  }

  /** Deletes {@code path} and everything below it; nothing happens if it does not exist. */
  public static void deleteTree(Path path) throws IOException {
    if (!Files.exists(path)) {
      return;
    }
    try (Stream<Path> s = Files.walk(path)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  /** The SHA-256 of the file's bytes, as 64 lowercase hex digits. */
  public static String sha256(Path file) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
