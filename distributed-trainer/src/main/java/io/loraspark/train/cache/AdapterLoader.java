package io.loraspark.train.cache;

import java.nio.file.Path;

/**
 * Builds the decode engine's in-memory form of one adapter from a local adapter directory, for
 * {@link AdapterCache}.
 *
 * <p>Called without the cache's lock held, possibly concurrently for different names, and at most
 * once at a time for one name (except after {@link AdapterCache#unload} cancelled a load of that
 * name that is still running). Read everything needed before returning: {@code localDir} may be a
 * temporary copy that is deleted right after. It must not acquire or load the same name from the
 * same cache: that call would wait for this load to finish.
 *
 * @param <V> the cached value type
 */
@FunctionalInterface
public interface AdapterLoader<V> {

  /**
   * Loads one adapter.
   *
   * @param name the adapter's name in the cache
   * @param localDir the adapter directory (adapter_config.json, adapter_model.safetensors)
   * @return the value, never null; the cache owns it from now on and hands it to its release
   *     callback when it is unloaded or evicted and no lease holds it
   * @throws RuntimeException anything, with a one-line message for the user; the cache rethrows it
   *     unchanged to every caller waiting on this load and keeps nothing of it
   */
  V load(String name, Path localDir);
}
