package io.loraspark.train.cache;

/**
 * One load of an {@link AdapterCache} in flight, and its outcome for the callers waiting on it.
 * Guarded by the cache's lock.
 *
 * @param <V> the cached value type
 */
final class PendingLoad<V> {

  /** The path or URI to load from; null to resolve the name under the source's root. */
  final String source;

  /** Acquires waiting for this load; each gets a lease reserved when the value is admitted. */
  int waiters;

  /** Set by an unload during the load: the value goes to the waiters but not into the index. */
  boolean cancelled;

  /** Whether {@link #entry} or {@link #failure} is set. */
  boolean done;

  CacheEntry<V> entry;

  /** The exception the load threw (a RuntimeException or an Error), rethrown to every waiter. */
  Throwable failure;

  PendingLoad(String source) {
    this.source = source;
  }
}
