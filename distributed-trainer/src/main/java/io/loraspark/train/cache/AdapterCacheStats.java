package io.loraspark.train.cache;

/**
 * A consistent snapshot of an {@link AdapterCache}'s counters, all taken under its lock.
 *
 * @param hits {@link AdapterCache#acquire} calls that found the adapter loaded
 * @param misses {@link AdapterCache#acquire} calls that had to load it or wait for its load
 * @param loads values loaded successfully (by acquire or by an explicit load)
 * @param loadFailures loads that threw or were refused by the budget; they left nothing behind
 * @param evictions entries removed by least-recently-used eviction to make room
 * @param unloads {@link AdapterCache#unload} calls that removed an entry or cancelled a load
 * @param entries adapters in the index now (what a new acquire would hit)
 * @param retiredEntries unloaded or evicted entries still held by leases, not yet released
 * @param bytesInUse bytes of all entries not yet released: indexed plus retired
 * @param budgetBytes the cache's byte budget
 */
public record AdapterCacheStats(
    long hits,
    long misses,
    long loads,
    long loadFailures,
    long evictions,
    long unloads,
    int entries,
    int retiredEntries,
    long bytesInUse,
    long budgetBytes) {}
