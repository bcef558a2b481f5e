package io.loraspark.train.cache;

import io.loraspark.train.cache.ValueLoader.Loaded;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.function.ToLongFunction;

/**
 * Loaded LoRA adapters kept in RAM for serving, keyed by name, within a byte budget: the decode
 * engine runs many adapters on one frozen base and stores each in its own form {@code V}.
 *
 * <p>Use: {@code try (AdapterLease<V> a = cache.acquire(name)) { decode with a.value() }}. A miss
 * loads the adapter (by its name under the {@link AdapterSource}'s root, or from the source of its
 * last explicit {@link #load(String, String)} if it was evicted since); concurrent acquires of one
 * missing name load it once, the others wait for that load and share its outcome. Explicit {@link
 * #load}, {@link #unload}, {@link #pin} and {@link #unpin} may run at any time on any thread.
 *
 * <p>Budget: each value counts {@code sizer(value)} bytes from the moment it is admitted until it
 * is released. Admitting a value evicts least-recently-used entries (by acquire) that are neither
 * pinned nor leased, as few as make it fit. A value larger than the budget is refused with {@link
 * IllegalArgumentException}; one that cannot fit because the rest is pinned or leased, with {@link
 * IllegalStateException}; both messages give the numbers. A value being loaded is not counted until
 * admitted, so memory may exceed the budget by the values in flight.
 *
 * <p>Lifetime: unloading or evicting an entry removes it from the index at once (new acquires
 * miss), but its value goes to the release callback only when its last lease closes; until then its
 * bytes still count. A failed load (the loader, sizer or budget threw) leaves no entry and no
 * bytes, releases any value it produced, and rethrows the same exception to the loading caller and
 * to every waiter.
 *
 * <p>Thread safety: all methods are thread-safe. One lock guards the state; the loader, sizer,
 * release callback and {@link AdapterSource} run without it. Waiting for another thread's load is
 * uninterruptible. The release callback should not throw; if it does, its exception propagates from
 * the call that ran it (the closing lease, {@link #unload}, or the acquire or load whose admission
 * evicted), after the cache's state is already updated.
 *
 * @param <V> the cached value type
 */
public final class AdapterCache<V> {

  private final long budgetBytes;
  private final ValueLoader<V> values;

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition loadFinished = lock.newCondition();
  // Everything below is guarded by lock.
  private final LinkedHashMap<String, CacheEntry<V>> index = new LinkedHashMap<>(16, 0.75f, true);
  private final Map<String, PendingLoad<V>> loading = new HashMap<>();
  private final Set<String> pinned = new HashSet<>();
  private final Map<String, String> explicitSources = new HashMap<>();
  private final CacheBudget<V> budget;
  private long hits;
  private long misses;
  private long loads;
  private long loadFailures;
  private long evictions;
  private long unloads;

  /**
   * An empty cache.
   *
   * @param budgetBytes the most bytes (by {@code sizer}) of values held at once, &gt; 0
   * @param source resolves adapter names and explicit sources into local directories
   * @param loader builds a value from a local adapter directory
   * @param sizer a value's bytes (its tensor bytes), &gt;= 0, the same every time it is asked
   * @param release frees a value the cache no longer holds (e.g. closes its off-heap arrays)
   */
  public AdapterCache(
      long budgetBytes,
      AdapterSource source,
      AdapterLoader<V> loader,
      ToLongFunction<V> sizer,
      Consumer<V> release) {
    if (budgetBytes <= 0) {
      throw new IllegalArgumentException(
          "Cannot set the adapter cache budget to " + budgetBytes + " bytes, must be > 0");
    }
    this.budgetBytes = budgetBytes;
    this.values =
        new ValueLoader<>(
            Objects.requireNonNull(source, "source"),
            Objects.requireNonNull(loader, "loader"),
            Objects.requireNonNull(sizer, "sizer"),
            Objects.requireNonNull(release, "release"));
    this.budget = new CacheBudget<>(budgetBytes);
  }

  /**
   * A lease on the adapter {@code name}, loading it first if it is not in the cache.
   *
   * @param name the adapter's name (resolved under the source's root unless it was loaded
   *     explicitly from another source and evicted since)
   * @return an open lease; close it when done
   * @throws IllegalArgumentException if the {@link AdapterSource} refuses the name, or the value
   *     alone exceeds the budget
   * @throws IllegalStateException if the value cannot fit because the rest is pinned or leased
   * @throws RuntimeException whatever the loader threw, unchanged
   */
  public AdapterLease<V> acquire(String name) {
    requireName(name);
    PendingLoad<V> load;
    lock.lock();
    try {
      CacheEntry<V> hit = index.get(name); // marks it most recently used
      if (hit != null) {
        hits++;
        hit.leases++;
        return lease(hit);
      }
      misses++;
      load = loading.get(name);
      if (load != null) {
        load.waiters++; // the loading thread reserves a lease for us when it admits the value
        while (!load.done) {
          loadFinished.awaitUninterruptibly();
        }
        if (load.failure instanceof Error error) {
          throw error;
        }
        if (load.failure != null) {
          throw (RuntimeException) load.failure;
        }
        return lease(load.entry);
      }
      load = new PendingLoad<>(explicitSources.get(name));
      loading.put(name, load);
    } finally {
      lock.unlock();
    }
    return lease(runLoad(name, load, 1));
  }

  /**
   * Loads {@code name} from {@code source} now, without leasing it; if it is evicted later, the
   * next acquire reloads it from the same source.
   *
   * @param name the key to cache it under
   * @param source a path or URI for {@link AdapterSource#resolve}
   * @return the bytes the value counts
   * @throws IllegalStateException if {@code name} is already loaded or being loaded (unload it
   *     first), or the value cannot fit because the rest is pinned or leased
   * @throws IllegalArgumentException if the source refuses {@code source}, or the value alone
   *     exceeds the budget
   * @throws RuntimeException whatever the loader threw, unchanged
   */
  public long load(String name, String source) {
    requireName(name);
    return loadNow(name, Objects.requireNonNull(source, "source"));
  }

  /** {@link #load(String, String)} from where {@link #acquire} would load {@code name}. */
  public long load(String name) {
    requireName(name);
    return loadNow(name, null);
  }

  /**
   * Removes {@code name} from the cache and forgets its pin and explicit source. Its value is
   * released now if no lease holds it, otherwise when the last lease closes. A load of it still
   * running is cancelled: its callers get their leases, but the value is not kept.
   *
   * @return whether an entry was removed or a load cancelled
   */
  public boolean unload(String name) {
    requireName(name);
    V toRelease = null;
    boolean found = false;
    lock.lock();
    try {
      pinned.remove(name);
      explicitSources.remove(name);
      PendingLoad<V> running = loading.remove(name); // new acquires start a fresh load
      if (running != null) {
        running.cancelled = true;
        found = true;
      }
      CacheEntry<V> e = index.remove(name);
      if (e != null) {
        found = true;
        e.indexed = false;
        if (e.leases > 0) {
          budget.retire(e);
        } else {
          budget.free(e.bytes);
          toRelease = e.value;
        }
      }
      unloads += found ? 1 : 0;
    } finally {
      lock.unlock();
    }
    values.release(toRelease == null ? List.of() : List.of(toRelease));
    return found;
  }

  /**
   * Never evict {@code name} until {@link #unpin} or {@link #unload}. The name need not be loaded
   * yet: pin before {@link #load} to close the window in which it could be evicted.
   */
  public void pin(String name) {
    requireName(name);
    locked(() -> pinned.add(name));
  }

  /** Makes {@code name} evictable again; nothing happens if it was not pinned. */
  public void unpin(String name) {
    requireName(name);
    locked(() -> pinned.remove(name));
  }

  /** The names in the index, least recently used first. */
  public List<String> names() {
    return locked(() -> List.copyOf(index.keySet()));
  }

  /** A snapshot of the counters. */
  public AdapterCacheStats stats() {
    return locked(
        () ->
            new AdapterCacheStats(
                hits,
                misses,
                loads,
                loadFailures,
                evictions,
                unloads,
                index.size(),
                budget.retiredEntries(),
                budget.bytesInUse(),
                budgetBytes));
  }

  private long loadNow(String name, String explicitSource) {
    PendingLoad<V> load;
    lock.lock();
    try {
      boolean loaded = index.containsKey(name);
      if (loaded || loading.containsKey(name)) {
        throw new IllegalStateException(
            "adapter %s is already %s; unload(%s) first to replace it"
                .formatted(name, loaded ? "loaded" : "being loaded", name));
      }
      load = new PendingLoad<>(explicitSource != null ? explicitSource : explicitSources.get(name));
      loading.put(name, load);
    } finally {
      lock.unlock();
    }
    return runLoad(name, load, 0).bytes;
  }

  /** Loads and admits the value of {@code load}, reserving {@code ownerLeases} for the caller. */
  private CacheEntry<V> runLoad(String name, PendingLoad<V> load, int ownerLeases) {
    Loaded<V> loaded = null;
    List<V> evicted = new ArrayList<>();
    CacheEntry<V> entry;
    try {
      loaded = values.load(name, load.source);
      entry = admit(name, load, loaded, ownerLeases, evicted);
    } catch (RuntimeException | Error e) { // recorded for the waiters, then rethrown unchanged
      fail(name, load, e);
      if (loaded != null) {
        values.releaseAfterFailure(loaded.value(), e);
      }
      throw e;
    }
    try {
      values.release(evicted);
    } catch (RuntimeException e) {
      for (int i = 0; i < ownerLeases; i++) {
        closeLease(entry);
      }
      throw e;
    }
    return entry;
  }

  /**
   * Under the lock: makes room (or throws before changing anything), then indexes the value, or
   * only hands it to the waiting callers if its load was cancelled; wakes the waiters.
   */
  private CacheEntry<V> admit(
      String name, PendingLoad<V> load, Loaded<V> loaded, int ownerLeases, List<V> evicted) {
    lock.lock();
    try {
      CacheEntry<V> e = new CacheEntry<>(name, loaded.value(), loaded.bytes());
      e.leases = ownerLeases + load.waiters;
      if (load.cancelled && e.leases == 0) { // unloaded while loading, and nobody waits for it
        evicted.add(e.value);
      } else {
        for (CacheEntry<V> victim : budget.makeRoom(name, e.bytes, index.values(), pinned)) {
          index.remove(victim.name);
          evictions++;
          evicted.add(victim.value);
        }
        budget.admit(e.bytes);
        if (load.cancelled) {
          budget.retire(e);
        } else {
          index.put(name, e);
          e.indexed = true;
          if (load.source != null) {
            explicitSources.put(name, load.source);
          }
        }
      }
      loads++;
      finish(name, load, e, null);
      return e;
    } finally {
      lock.unlock();
    }
  }

  private void fail(String name, PendingLoad<V> load, Throwable failure) {
    lock.lock();
    try {
      if (!load.done) {
        loadFailures++;
        finish(name, load, null, failure);
      }
    } finally {
      lock.unlock();
    }
  }

  /** Under the lock: records the outcome of {@code load} and wakes its waiters. */
  private void finish(String name, PendingLoad<V> load, CacheEntry<V> e, Throwable failure) {
    loading.remove(name, load);
    load.done = true;
    load.entry = e;
    load.failure = failure;
    loadFinished.signalAll();
  }

  private void closeLease(CacheEntry<V> e) {
    V toRelease = null;
    lock.lock();
    try {
      e.leases--;
      if (e.leases == 0 && !e.indexed && budget.unretire(e)) {
        toRelease = e.value;
      }
    } finally {
      lock.unlock();
    }
    values.release(toRelease == null ? List.of() : List.of(toRelease));
  }

  private AdapterLease<V> lease(CacheEntry<V> e) {
    return new AdapterLease<>(e.name, e.value, e.bytes, () -> closeLease(e));
  }

  private <T> T locked(Supplier<T> action) {
    lock.lock();
    try {
      return action.get();
    } finally {
      lock.unlock();
    }
  }

  private static void requireName(String name) {
    if (name == null || name.isBlank()) {
      throw new IllegalArgumentException("adapter name is empty; give the adapter's name");
    }
  }
}
