package io.loraspark.train.cache;

import static io.loraspark.train.cache.AdapterDirs.adapter;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The adapter cache on real adapter directories whose values are their weights' bytes. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdapterCacheTest {

  @TempDir Path tmp;

  Path root;
  AdapterSource source;
  AdapterDirs.Released released;
  ExecutorService pool;

  @BeforeEach
  void setUp() {
    root = mkdirs(tmp.resolve("adapters"));
    source = AdapterSource.namesUnder(root);
    released = new AdapterDirs.Released();
    pool = Executors.newFixedThreadPool(8);
  }

  @AfterEach
  void tearDown() throws InterruptedException {
    pool.shutdownNow();
    assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).as("test threads ended").isTrue();
  }

  static Path mkdirs(Path dir) {
    try {
      return Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  AdapterCache<byte[]> cache(long budget) {
    return cache(budget, AdapterDirs::readWeights);
  }

  AdapterCache<byte[]> cache(long budget, AdapterLoader<byte[]> loader) {
    return new AdapterCache<>(budget, source, loader, v -> v.length, released::accept);
  }

  static void touch(AdapterCache<byte[]> cache, String name) {
    try (AdapterLease<byte[]> lease = cache.acquire(name)) {
      assertThat(lease.value()).as("value of " + name).isNotNull();
    }
  }

  @Test
  void evictsLeastRecentlyUsedFirstAndOnlyAsManyAsNeeded() {
    adapter(root, "a", 30);
    adapter(root, "b", 31);
    adapter(root, "c", 32);
    adapter(root, "d", 50);
    AdapterCache<byte[]> cache = cache(100);
    touch(cache, "a");
    touch(cache, "b");
    touch(cache, "c");
    touch(cache, "a"); // order now b, c, a (least recent first)
    assertThat(cache.names()).containsExactly("b", "c", "a");

    touch(cache, "d"); // 93 in use, needs 50: evict b (31) then c (32), keep a

    assertThat(cache.names()).as("LRU b and c evicted, a kept").containsExactly("a", "d");
    assertThat(released.sizes()).as("released in LRU order").containsExactly(31, 32);
    assertThat(cache.stats().bytesInUse()).isEqualTo(80);
  }

  @Test
  void countsHitsMissesLoadsAndEvictions() {
    adapter(root, "a", 60);
    adapter(root, "b", 60);
    AdapterCache<byte[]> cache = cache(100);
    touch(cache, "a"); // miss, load
    touch(cache, "a"); // hit
    touch(cache, "b"); // miss, load, evicts a
    touch(cache, "b"); // hit
    touch(cache, "a"); // miss, load, evicts b

    AdapterCacheStats s = cache.stats();
    assertThat(s.hits()).as("hits").isEqualTo(2);
    assertThat(s.misses()).as("misses").isEqualTo(3);
    assertThat(s.loads()).as("loads").isEqualTo(3);
    assertThat(s.evictions()).as("evictions").isEqualTo(2);
    assertThat(s.unloads()).as("unloads").isZero();
    assertThat(s.entries()).as("entries").isEqualTo(1);
    assertThat(s.bytesInUse()).as("bytes").isEqualTo(60);
    assertThat(s.budgetBytes()).isEqualTo(100);
  }

  @Test
  void pinnedEntryIsNeverEvicted() {
    adapter(root, "a", 40);
    adapter(root, "b", 40);
    adapter(root, "c", 40);
    AdapterCache<byte[]> cache = cache(100);
    cache.pin("a"); // before loading: no window in which it could be evicted
    cache.load("a");
    touch(cache, "b");
    touch(cache, "c"); // a is least recently used but pinned: b goes

    assertThat(cache.names()).containsExactly("a", "c");
    assertThat(released.sizes()).containsExactly(40);

    cache.unpin("a");
    touch(cache, "b"); // now a is the LRU victim
    assertThat(cache.names()).containsExactly("c", "b");
  }

  @Test
  void refusesWhenEverythingElseIsPinnedOrLeasedAndKeepsNothing() {
    adapter(root, "a", 40);
    adapter(root, "b", 40);
    adapter(root, "c", 40);
    AdapterCache<byte[]> cache = cache(100);
    cache.pin("a");
    cache.load("a");
    try (AdapterLease<byte[]> b = cache.acquire("b")) {
      assertThatThrownBy(() -> cache.acquire("c"))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("adapter c needs 40 bytes but at most 20 of the 100-byte")
          .hasMessageContaining("40 by pinned adapters [a]")
          .hasMessageContaining("40 by adapters in use (leased) [b]")
          .hasMessageNotContaining("\n");
      assertThat(b.value()).hasSize(40);
    }
    assertThat(cache.names()).containsExactly("a", "b");
    assertThat(cache.stats().loadFailures()).isEqualTo(1);
    assertThat(cache.stats().bytesInUse()).isEqualTo(80);
    assertThat(released.sizes()).as("the refused value is released").containsExactly(40);
  }

  @Test
  void valueLargerThanBudgetIsRefusedWithTheNumbers() {
    adapter(root, "big", 150);
    AdapterCache<byte[]> cache = cache(100);

    assertThatThrownBy(() -> cache.acquire("big"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "adapter big needs 150 bytes, more than the whole adapter cache budget of 100 bytes;"
                + " raise the budget or use a smaller adapter (lower rank, fewer targets)");
    assertThat(cache.stats().entries()).isZero();
    assertThat(cache.stats().bytesInUse()).isZero();
    assertThat(released.sizes()).containsExactly(150);
  }

  @Test
  void unloadWhileLeasedReleasesOnlyAfterTheLastLeaseCloses() {
    adapter(root, "a", 40);
    AdapterCache<byte[]> cache = cache(100);
    AdapterLease<byte[]> first = cache.acquire("a");
    AdapterLease<byte[]> second = cache.acquire("a");
    byte[] old = first.value();

    assertThat(cache.unload("a")).isTrue();

    assertThat(released.values).as("not released under its users").isEmpty();
    assertThat(cache.names()).as("out of the index at once").isEmpty();
    assertThat(cache.stats().retiredEntries()).isEqualTo(1);
    assertThat(cache.stats().bytesInUse()).as("still counted").isEqualTo(40);
    try (AdapterLease<byte[]> fresh = cache.acquire("a")) {
      assertThat(fresh.value()).as("a new acquire reloads").isNotSameAs(old).isEqualTo(old);
      assertThat(cache.stats().loads()).isEqualTo(2);
      assertThat(cache.stats().bytesInUse()).as("both copies count").isEqualTo(80);
    }
    first.close();
    first.close(); // idempotent: one lease is still open
    assertThat(released.values).isEmpty();
    second.close();

    assertThat(released.values).hasSize(1);
    assertThat(released.values.get(0)).isSameAs(old);
    assertThat(cache.stats().bytesInUse()).isEqualTo(40);
    assertThat(cache.stats().retiredEntries()).isZero();
    assertThat(cache.stats().unloads()).isEqualTo(1);
    assertThatThrownBy(first::value)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("lease on adapter a is closed");
  }

  @Test
  void unloadOfUnleasedEntryReleasesAtOnce() {
    adapter(root, "a", 40);
    AdapterCache<byte[]> cache = cache(100);
    cache.load("a");
    assertThat(cache.unload("a")).isTrue();
    assertThat(cache.unload("a")).as("second unload finds nothing").isFalse();
    assertThat(released.sizes()).containsExactly(40);
    assertThat(cache.stats().bytesInUse()).isZero();
  }

  @Test
  void concurrentAcquiresOfAMissingNameLoadItOnce() throws Exception {
    adapter(root, "a", 40);
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch gate = new CountDownLatch(1);
    AtomicInteger calls = new AtomicInteger();
    AdapterCache<byte[]> cache =
        cache(
            100,
            (name, dir) -> {
              calls.incrementAndGet();
              entered.countDown();
              await(gate);
              return AdapterDirs.readWeights(name, dir);
            });
    int threads = 8;
    List<Future<AdapterLease<byte[]>>> leases = new ArrayList<>();
    for (int i = 0; i < threads; i++) {
      leases.add(pool.submit(() -> cache.acquire("a")));
    }
    assertThat(entered.await(10, TimeUnit.SECONDS)).as("loader started").isTrue();
    awaitMisses(cache, threads); // every thread is loading or waiting
    gate.countDown();

    byte[] value = null;
    for (Future<AdapterLease<byte[]>> f : leases) {
      try (AdapterLease<byte[]> lease = f.get(10, TimeUnit.SECONDS)) {
        value = value == null ? lease.value() : value;
        assertThat(lease.value()).as("one shared value").isSameAs(value);
      }
    }
    assertThat(calls.get()).as("loader calls").isEqualTo(1);
    assertThat(cache.stats().loads()).isEqualTo(1);
    assertThat(cache.stats().misses()).isEqualTo(threads);
    assertThat(cache.stats().bytesInUse()).isEqualTo(40);
  }

  @Test
  void failingLoadLeavesNothingAndRethrowsTheSameExceptionToEveryWaiter() throws Exception {
    adapter(root, "bad", 40);
    IllegalArgumentException failure =
        new IllegalArgumentException("bad/adapter_config.json: r must be > 0 but was 0");
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch gate = new CountDownLatch(1);
    AdapterCache<byte[]> cache =
        cache(
            100,
            (name, dir) -> {
              entered.countDown();
              await(gate);
              throw failure;
            });
    List<Future<AdapterLease<byte[]>>> calls = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      calls.add(pool.submit(() -> cache.acquire("bad")));
    }
    assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
    awaitMisses(cache, 3);
    gate.countDown();

    for (Future<AdapterLease<byte[]>> f : calls) {
      assertThatThrownBy(() -> f.get(10, TimeUnit.SECONDS))
          .cause()
          .as("the loader's exception, unchanged")
          .isSameAs(failure);
    }
    AdapterCacheStats s = cache.stats();
    assertThat(s.entries()).isZero();
    assertThat(s.bytesInUse()).isZero();
    assertThat(s.loads()).isZero();
    assertThat(s.loadFailures()).isEqualTo(1);
    assertThat(cache.names()).isEmpty();
    assertThat(released.values).as("nothing was produced").isEmpty();
    assertThatThrownBy(() -> cache.acquire("bad"))
        .as("a later acquire tries again")
        .isSameAs(failure);
  }

  @Test
  void unloadDuringLoadHandsTheValueToItsCallerButKeepsItOutOfTheIndex() throws Exception {
    adapter(root, "a", 40);
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch gate = new CountDownLatch(1);
    AdapterCache<byte[]> cache =
        cache(
            100,
            (name, dir) -> {
              entered.countDown();
              await(gate);
              return AdapterDirs.readWeights(name, dir);
            });
    Future<AdapterLease<byte[]>> pending = pool.submit(() -> cache.acquire("a"));
    assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();

    assertThat(cache.unload("a")).as("cancels the running load").isTrue();
    gate.countDown();

    try (AdapterLease<byte[]> lease = pending.get(10, TimeUnit.SECONDS)) {
      assertThat(lease.value()).hasSize(40);
      assertThat(cache.names()).isEmpty();
      assertThat(cache.stats().bytesInUse()).isEqualTo(40);
    }
    assertThat(released.sizes()).containsExactly(40);
    assertThat(cache.stats().bytesInUse()).isZero();
  }

  @Test
  void explicitLoadFromAPathIsReloadedFromThereAfterEviction() {
    Path elsewhere = mkdirs(tmp.resolve("elsewhere"));
    Path x = adapter(elsewhere, "x", 60);
    adapter(root, "y", 60);
    source = AdapterSource.builder(root).allowedRoots(List.of(elsewhere)).build();
    AdapterCache<byte[]> cache = cache(100);

    assertThat(cache.load("x", x.toString())).isEqualTo(60);
    assertThatThrownBy(() -> cache.load("x", x.toString()))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("adapter x is already loaded; unload(x) first to replace it");
    touch(cache, "y"); // evicts x
    assertThat(cache.names()).containsExactly("y");
    touch(cache, "x"); // not under the root: reloaded from its explicit path

    assertThat(cache.names()).containsExactly("x");
    assertThat(cache.stats().loads()).isEqualTo(3);
    cache.unload("x"); // forgets the path too
    assertThatThrownBy(() -> cache.acquire("x"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("adapter name \"x\" does not exist under the adapter root");
  }

  @Test
  void randomConcurrentUseReleasesEveryLoadedValueExactlyOnce() throws Exception {
    List<String> names = List.of("a", "b", "c", "d", "e", "f");
    for (int i = 0; i < names.size(); i++) {
      adapter(root, names.get(i), 20 + 5 * i);
    }
    List<byte[]> produced = new CopyOnWriteArrayList<>();
    AdapterCache<byte[]> cache =
        cache(
            100,
            (name, dir) -> {
              byte[] v = AdapterDirs.readWeights(name, dir);
              produced.add(v);
              return v;
            });
    List<Future<Integer>> workers = new ArrayList<>();
    for (int t = 0; t < 4; t++) {
      Random random = new Random(t); // seeded: the same op sequence per run
      workers.add(pool.submit(() -> randomOps(cache, names, random, 300)));
    }
    int refusals = 0;
    for (Future<Integer> w : workers) {
      refusals += w.get(30, TimeUnit.SECONDS);
    }
    cache.unpin("a");
    names.forEach(cache::unload);

    AdapterCacheStats s = cache.stats();
    assertThat(s.bytesInUse()).as("nothing counted after unloading all").isZero();
    assertThat(s.retiredEntries()).isZero();
    assertThat(s.loads() + s.loadFailures()).as("every load counted").isEqualTo(produced.size());
    assertThat(released.values.size()).as("released once each").isEqualTo(produced.size());
    Set<byte[]> distinct = Collections.newSetFromMap(new IdentityHashMap<>());
    distinct.addAll(released.values);
    assertThat(distinct).as("no value released twice").hasSize(produced.size());
    assertThat(s.loadFailures())
        .as("only budget refusals failed (each seen by its loader and any waiters)")
        .isLessThanOrEqualTo(refusals);
  }

  /** Acquire/close, unload, load, pin and unpin at random; returns the budget refusals seen. */
  private static int randomOps(
      AdapterCache<byte[]> cache, List<String> names, Random random, int ops) {
    int refusals = 0;
    for (int i = 0; i < ops; i++) {
      String name = names.get(random.nextInt(names.size()));
      int op = random.nextInt(10);
      try {
        if (op < 6) {
          try (AdapterLease<byte[]> lease = cache.acquire(name)) {
            assertThat(lease.value()).hasSize(lease.value().length);
          }
        } else if (op < 8) {
          cache.unload(name);
        } else if (op == 8) {
          cache.load(name);
        } else if (random.nextBoolean()) {
          cache.pin("a");
        } else {
          cache.unpin("a");
        }
      } catch (IllegalStateException e) {
        if (!e.getMessage().contains("already")) {
          refusals++; // cannot fit: the rest was pinned or leased by other threads
        }
      }
    }
    return refusals;
  }

  @Test
  void refusesANonPositiveBudget() {
    assertThatThrownBy(() -> cache(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Cannot set the adapter cache budget to 0 bytes, must be > 0");
  }

  private static void await(CountDownLatch latch) {
    try {
      if (!latch.await(10, TimeUnit.SECONDS)) {
        throw new IllegalStateException("test gate not opened within 10 s");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  /** Waits until {@code n} acquires have missed (each is then loading or waiting for the load). */
  private static void awaitMisses(AdapterCache<byte[]> cache, int n) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (cache.stats().misses() < n) {
      assertThat(System.nanoTime()).as("%d acquires missed in time", n).isLessThan(deadline);
      Thread.sleep(5);
    }
  }
}
