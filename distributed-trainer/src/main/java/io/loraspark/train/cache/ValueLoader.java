package io.loraspark.train.cache;

import java.util.List;
import java.util.function.Consumer;
import java.util.function.ToLongFunction;

/**
 * The steps of an {@link AdapterCache} load that run without its lock: resolve the source, call the
 * loader, size the value; and the release callback. Stateless apart from its functions, so
 * thread-safe when they are.
 *
 * @param <V> the cached value type
 */
final class ValueLoader<V> {

  /** A value just loaded and its size. */
  record Loaded<V>(V value, long bytes) {}

  private final AdapterSource source;
  private final AdapterLoader<V> loader;
  private final ToLongFunction<V> sizer;
  private final Consumer<V> release;

  ValueLoader(
      AdapterSource source, AdapterLoader<V> loader, ToLongFunction<V> sizer, Consumer<V> release) {
    this.source = source;
    this.loader = loader;
    this.sizer = sizer;
    this.release = release;
  }

  /**
   * Resolves, loads and sizes one adapter; deletes a temporary copy afterwards. On any failure the
   * value, if one was produced, is released, and the exception propagates unchanged.
   *
   * @param explicitSource a path or URI, or null to resolve {@code name} under the root
   */
  Loaded<V> load(String name, String explicitSource) {
    LocalAdapterDir dir =
        explicitSource == null ? source.resolveName(name) : source.resolve(explicitSource);
    V value = null;
    try (dir) {
      value = loader.load(name, dir.path());
      if (value == null) {
        throw new IllegalStateException(
            "the adapter loader returned null for " + name + " from " + dir + "; it must throw");
      }
      long bytes = sizer.applyAsLong(value);
      if (bytes < 0) {
        throw new IllegalStateException(
            "the adapter size function returned " + bytes + " bytes for " + name + "; need >= 0");
      }
      return new Loaded<>(value, bytes);
    } catch (RuntimeException e) { // the sizer, or deleting the temporary copy, failed
      if (value != null) {
        releaseAfterFailure(value, e);
      }
      throw e;
    }
  }

  /** Runs the release callback on every value, in order; the first exception propagates. */
  void release(List<V> values) {
    RuntimeException first = null;
    for (V v : values) {
      try {
        release.accept(v);
      } catch (RuntimeException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  /** Releases a value that will not be admitted, keeping {@code primary} the exception thrown. */
  void releaseAfterFailure(V value, Throwable primary) {
    try {
      release.accept(value);
    } catch (RuntimeException e) {
      primary.addSuppressed(e);
    }
  }
}
