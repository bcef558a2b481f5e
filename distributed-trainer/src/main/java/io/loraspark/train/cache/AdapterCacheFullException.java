package io.loraspark.train.cache;

/**
 * An adapter cannot be admitted now because every other entry is pinned or leased: a transient
 * condition (leases close as requests finish), unlike an adapter larger than the whole budget
 * ({@link IllegalArgumentException}). A server answers it with "retry later".
 */
public final class AdapterCacheFullException extends IllegalStateException {
  private static final long serialVersionUID = 1L;

  AdapterCacheFullException(String message) {
    super(message);
  }
}
