package io.loraspark.train.cache;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A hold on one loaded adapter of an {@link AdapterCache}: while any lease on it is open, its value
 * is never released, even if the adapter is unloaded or evicted in the meantime (then new {@link
 * AdapterCache#acquire} calls miss and load afresh, while this lease keeps the old value).
 *
 * <p>Call order: {@link AdapterCache#acquire} → {@link #value()}* → {@link #close()}, in
 * try-with-resources. Do not keep the value past {@link #close()}: the cache may release it at
 * once. Thread-safe; {@link #close()} is idempotent.
 *
 * @param <V> the cached value type
 */
public final class AdapterLease<V> implements AutoCloseable {

  private final String name;
  private final V value;
  private final long bytes;
  private final Runnable onClose;
  private final AtomicBoolean closed = new AtomicBoolean();

  AdapterLease(String name, V value, long bytes, Runnable onClose) {
    this.name = name;
    this.value = value;
    this.bytes = bytes;
    this.onClose = onClose;
  }

  /** The adapter's name in the cache. */
  public String name() {
    return name;
  }

  /**
   * The cached value, valid until this lease is closed.
   *
   * @throws IllegalStateException if this lease is already closed
   */
  public V value() {
    if (closed.get()) {
      throw new IllegalStateException(
          "the lease on adapter " + name + " is closed; acquire the adapter again to use it");
    }
    return value;
  }

  /** The bytes the cache counts for this value. */
  public long bytes() {
    return bytes;
  }

  /**
   * Gives the hold back; the last close of an unloaded or evicted adapter runs the cache's release
   * callback on this thread (its exception, if any, propagates from here).
   */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      onClose.run();
    }
  }

  @Override
  public String toString() {
    return "AdapterLease[" + name + ", " + bytes + " bytes" + (closed.get() ? ", closed]" : "]");
  }
}
