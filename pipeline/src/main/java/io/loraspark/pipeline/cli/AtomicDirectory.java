package io.loraspark.pipeline.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.stream.Stream;

/** Directory operations for the staged write; I/O failures name the path. */
final class AtomicDirectory {
  private AtomicDirectory() {}

  /**
   * Refuses an OUTPUT that is a file, that is or holds one of the inputs (even with --force), or
   * that is non-empty without --force.
   *
   * @param out the absolute, normalised output directory
   * @param given the --output value as the user wrote it, for messages
   */
  static void checkOutput(Path out, Path given, boolean force, Path... inputs) {
    if (!Files.exists(out)) {
      return;
    }
    if (!Files.isDirectory(out)) {
      throw new IllegalArgumentException(
          "--output " + given + " is a file; pass a directory to write into");
    }
    for (Path input : inputs) {
      if (isWithin(input, out)) {
        throw new IllegalArgumentException(
            "--output "
                + given
                + " is or contains the input "
                + input
                + ", which replacing it would destroy; write to another directory");
      }
    }
    if (!force && !isEmpty(out)) {
      throw new IllegalArgumentException(
          "--output "
              + given
              + " exists and is not empty; pass --force to replace it or choose a new directory");
    }
  }

  /**
   * Runs {@code write} on a hidden sibling of {@code out} and renames it into place when it returns
   * ({@link #replace}); on failure the sibling is deleted.
   *
   * @param purpose a word naming the staging directory ({@code .<out>.<purpose>-<uuid>})
   */
  static void writeStaged(Path out, String purpose, Consumer<Path> write) {
    create(out.getParent());
    Path staging =
        out.resolveSibling("." + out.getFileName() + "." + purpose + "-" + UUID.randomUUID());
    try {
      write.accept(staging);
      replace(staging, out);
    } catch (RuntimeException e) {
      try {
        deleteRecursively(staging);
      } catch (UncheckedIOException cleanup) {
        e.addSuppressed(cleanup);
      }
      throw e;
    }
  }

  static void create(Path dir) {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot create directory: " + e, e);
    }
  }

  /** Whether {@code p} exists and is {@code dir} or lies under it (symbolic links resolved). */
  static boolean isWithin(Path p, Path dir) {
    try {
      return Files.exists(p) && p.toRealPath().startsWith(dir.toRealPath());
    } catch (IOException e) {
      throw new UncheckedIOException(p + " / " + dir + ": cannot resolve: " + e, e);
    }
  }

  static boolean isEmpty(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.findAny().isEmpty();
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot list: " + e, e);
    }
  }

  /**
   * Renames the complete {@code staging} directory to {@code target}. An existing {@code target} is
   * first renamed aside and deleted after the swap, so a reader sees the old or the new checkpoint,
   * never a mix (rename(2) cannot replace a non-empty directory in one step).
   */
  static void replace(Path staging, Path target) {
    Path old = null;
    try {
      if (Files.exists(target)) {
        old = target.resolveSibling("." + target.getFileName() + ".old-" + UUID.randomUUID());
        Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
      }
      Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      UncheckedIOException u =
          new UncheckedIOException(target + ": cannot move the new directory in: " + e, e);
      restore(old, target, u);
      throw u;
    }
    if (old != null) {
      deleteRecursively(old);
    }
  }

  /** Puts the set-aside {@code old} back at {@code target} after a failed swap. */
  private static void restore(Path old, Path target, UncheckedIOException failure) {
    if (old == null || Files.exists(target)) {
      return;
    }
    try {
      Files.move(old, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      failure.addSuppressed(e);
    }
  }

  /** Deletes {@code dir} and everything under it, if it exists. */
  static void deleteRecursively(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot delete: " + e, e);
    }
  }
}
