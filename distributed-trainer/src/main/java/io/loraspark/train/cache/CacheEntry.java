package io.loraspark.train.cache;

/**
 * One value of an {@link AdapterCache}. The mutable fields are guarded by the cache's lock.
 *
 * @param <V> the cached value type
 */
final class CacheEntry<V> {
  final String name;
  final V value;
  final long bytes;

  /** Open leases, including those reserved for callers still waking up from the load. */
  int leases;

  /** Whether it is in the index (a new acquire hits it); false once unloaded or evicted. */
  boolean indexed;

  CacheEntry(String name, V value, long bytes) {
    this.name = name;
    this.value = value;
    this.bytes = bytes;
  }
}
