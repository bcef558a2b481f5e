package io.loraspark.train.cache;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The byte accounting of an {@link AdapterCache}: bytes in use, entries retired (out of the index
 * but still leased), the choice of eviction victims and the refusals with their numbers. Not
 * thread-safe: used only under the cache's lock.
 */
final class CacheBudget<V> {

  /** How many adapter names a refusal lists per group. */
  private static final int NAMES_LISTED = 8;

  private final long budgetBytes;
  private long bytesInUse;
  private final Set<CacheEntry<V>> retired = Collections.newSetFromMap(new IdentityHashMap<>());

  CacheBudget(long budgetBytes) {
    this.budgetBytes = budgetBytes;
  }

  long bytesInUse() {
    return bytesInUse;
  }

  int retiredEntries() {
    return retired.size();
  }

  /**
   * Frees the least-recently-used unpinned, unleased entries that make {@code bytes} fit, marking
   * them out of the index; the caller removes them from it and releases their values. Changes
   * nothing when it throws.
   *
   * @param lruFirst the indexed entries, least recently used first
   * @return the victims, least recently used first (empty if it fits already)
   * @throws IllegalArgumentException if {@code bytes} exceeds the whole budget
   * @throws IllegalStateException if it cannot fit because the rest is pinned or leased
   */
  List<CacheEntry<V>> makeRoom(
      String name, long bytes, Collection<CacheEntry<V>> lruFirst, Set<String> pinned) {
    if (bytes > budgetBytes) {
      throw new IllegalArgumentException(
          "adapter "
              + name
              + " needs "
              + bytes
              + " bytes, more than the whole adapter cache budget of "
              + budgetBytes
              + " bytes; raise the budget or use a smaller adapter (lower rank, fewer targets)");
    }
    long free = budgetBytes - bytesInUse;
    List<CacheEntry<V>> victims = new ArrayList<>();
    for (CacheEntry<V> e : lruFirst) {
      if (bytes <= free) {
        break;
      }
      if (e.leases == 0 && !pinned.contains(e.name)) {
        victims.add(e);
        free += e.bytes;
      }
    }
    if (bytes > free) {
      throw new AdapterCacheFullException(cannotFit(name, bytes, lruFirst, pinned));
    }
    for (CacheEntry<V> v : victims) {
      v.indexed = false;
      bytesInUse -= v.bytes;
    }
    return victims;
  }

  /** Counts a newly admitted value. */
  void admit(long bytes) {
    bytesInUse += bytes;
  }

  /** Stops counting an entry released at once (unloaded with no lease). */
  void free(long bytes) {
    bytesInUse -= bytes;
  }

  /** Keeps counting {@code e}, out of the index, until {@link #unretire}. */
  void retire(CacheEntry<V> e) {
    retired.add(e);
  }

  /** Stops counting a retired entry whose last lease closed; false if it was not retired. */
  boolean unretire(CacheEntry<V> e) {
    if (!retired.remove(e)) {
      return false;
    }
    bytesInUse -= e.bytes;
    return true;
  }

  private String cannotFit(
      String name, long bytes, Collection<CacheEntry<V>> lruFirst, Set<String> pinned) {
    long pinnedBytes = 0;
    long leasedBytes = 0;
    List<String> pinnedNames = new ArrayList<>();
    List<String> leasedNames = new ArrayList<>();
    for (CacheEntry<V> e : lruFirst) {
      if (pinned.contains(e.name)) {
        pinnedBytes += e.bytes;
        pinnedNames.add(e.name);
      } else if (e.leases > 0) {
        leasedBytes += e.bytes;
        leasedNames.add(e.name);
      }
    }
    for (CacheEntry<V> e : retired) {
      leasedBytes += e.bytes;
      leasedNames.add(e.name + " (unloaded)");
    }
    long canFree = budgetBytes - bytesInUse + (bytesInUse - pinnedBytes - leasedBytes);
    return "adapter "
        + name
        + " needs "
        + bytes
        + " bytes but at most "
        + canFree
        + " of the "
        + budgetBytes
        + "-byte adapter cache budget can be made free: "
        + bytesInUse
        + " bytes are in use, "
        + pinnedBytes
        + " by pinned adapters "
        + listed(pinnedNames)
        + " and "
        + leasedBytes
        + " by adapters in use (leased) "
        + listed(leasedNames)
        + "; unpin or unload adapters, close their leases, or raise the budget";
  }

  private static String listed(List<String> names) {
    if (names.size() <= NAMES_LISTED) {
      return names.toString();
    }
    return names.subList(0, NAMES_LISTED) + " and " + (names.size() - NAMES_LISTED) + " more";
  }
}
