package io.loraspark.train.cache;

import io.loraspark.train.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A local adapter directory that {@link AdapterSource} resolved, ready to be read: either the
 * user's own directory (checked, read in place) or a temporary copy of a remote one.
 *
 * <p>Call order: {@link AdapterSource#resolve} or {@link AdapterSource#resolveName} → read {@link
 * #path()} → {@link #close()}. Closing deletes a temporary copy (and does nothing to a directory
 * read in place), so read everything you need before closing. Use try-with-resources.
 */
public final class LocalAdapterDir implements AutoCloseable {

  private final Path path;
  private final String source;
  private final boolean temporaryCopy;
  private final AtomicBoolean closed = new AtomicBoolean();

  LocalAdapterDir(Path path, String source, boolean temporaryCopy) {
    this.path = path;
    this.source = source;
    this.temporaryCopy = temporaryCopy;
  }

  /** The directory to read: a real path (symlinks resolved) or the temporary copy. */
  public Path path() {
    return path;
  }

  /** What the user named: the adapter name, path or URI, as given. */
  public String source() {
    return source;
  }

  /** Whether {@link #path()} is a temporary copy that {@link #close()} deletes. */
  public boolean isTemporaryCopy() {
    return temporaryCopy;
  }

  /**
   * Deletes the temporary copy, if this is one; idempotent.
   *
   * @throws UncheckedIOException naming the copy and its source if it cannot be deleted
   */
  @Override
  public void close() {
    if (!temporaryCopy || !closed.compareAndSet(false, true)) {
      return;
    }
    try {
      AtomicFiles.deleteTree(path);
    } catch (IOException e) {
      throw new UncheckedIOException(
          path + ": cannot delete the temporary copy of adapter " + source + ": " + e, e);
    }
  }

  @Override
  public String toString() {
    return temporaryCopy ? source + " (copied to " + path + ")" : path.toString();
  }
}
