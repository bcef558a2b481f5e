package io.loraspark.train.cache;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Local path helpers for {@link AdapterSource}, each failure naming the path. Stateless. */
final class LocalPaths {
  private LocalPaths() {}

  /**
   * {@code s} as a path.
   *
   * @param what how the message names it, e.g. {@code adapter name "x"}
   * @throws IllegalArgumentException if {@code s} is not a valid path on this platform
   */
  static Path parsePath(String s, String what) {
    try {
      return Path.of(s);
    } catch (InvalidPathException e) {
      throw new IllegalArgumentException(what + " is not a valid path: " + e.getMessage(), e);
    }
  }

  /**
   * The real path of {@code p} (symlinks followed), or null if it does not exist.
   *
   * @throws UncheckedIOException naming {@code p} for any other I/O failure
   */
  static Path realPathOrNull(Path p) {
    try {
      return p.toRealPath();
    } catch (NoSuchFileException e) {
      return null;
    } catch (java.nio.file.FileSystemException e) { // a symbolic-link loop, a name too long, ...
      throw new IllegalArgumentException(p + " cannot be resolved: " + e.getMessage(), e);
    } catch (IOException e) {
      throw new UncheckedIOException(p + ": cannot resolve its real path: " + e, e);
    }
  }

  /**
   * The real path of an existing directory.
   *
   * @param what how the message names it, e.g. {@code adapter root}
   * @throws IllegalArgumentException naming it if it is null, missing or not a directory
   */
  static Path realDirectory(Path dir, String what) {
    Path real = dir == null ? null : realPathOrNull(dir.toAbsolutePath());
    if (real == null || !Files.isDirectory(real)) {
      throw new IllegalArgumentException(
          what + " " + dir + " is not an existing directory; create it or give another directory");
    }
    return real;
  }

  /**
   * The names of the directories directly inside {@code dir}, sorted, at most {@code limit} of them
   * (for messages).
   *
   * @throws UncheckedIOException naming {@code dir} if it cannot be listed
   */
  static List<String> childDirectories(Path dir, int limit) {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> dirs = Files.newDirectoryStream(dir, Files::isDirectory)) {
      for (Path d : dirs) {
        names.add(d.getFileName().toString());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot list adapter directories: " + e, e);
    }
    names.sort(null);
    return names.size() > limit ? names.subList(0, limit) : names;
  }
}
