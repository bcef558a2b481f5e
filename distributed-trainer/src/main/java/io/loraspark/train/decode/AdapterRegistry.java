package io.loraspark.train.decode;

import io.loraspark.train.cache.AdapterCache;
import io.loraspark.train.cache.AdapterLease;
import io.loraspark.train.cache.AdapterLoader;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.ChainedAdapters;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.ModelWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The adapters of one frozen base, in RAM for decoding: an {@link AdapterCache} of {@link
 * DecodeAdapter}s (PEFT directories of any method the project reads, loaded against the base so a
 * wrong shape is refused naming the file and tensor) and the leases a request holds while it
 * decodes. One registry per base model per JVM ({@link #forBase}), shared by every thread.
 */
public final class AdapterRegistry {
  private static final ConcurrentHashMap<String, AdapterRegistry> PER_JVM =
      new ConcurrentHashMap<>();

  private final AdapterCache<DecodeAdapter> cache;

  /**
   * @param base the frozen base every adapter is loaded for
   * @param source what names and paths may be loaded; a child adapter's parents must be loadable
   *     from it too (inside its allowed roots), so a recorded parent cannot reach outside them
   * @param budgetBytes the cache's byte budget (adapter tensor bytes as held)
   */
  public AdapterRegistry(ModelWeights base, AdapterSource source, long budgetBytes) {
    this(
        source,
        budgetBytes,
        (name, dir) -> {
          AdapterChain chain = AdapterChain.of(dir.toString());
          requireChainInside(source, dir, chain);
          return ChainedAdapters.forDecoding(dir, chain, base);
        });
  }

  /**
   * Refuses a child whose recorded parents ({@code chain}, the chain of {@code dir}) {@code source}
   * would not load by path.
   *
   * @throws IllegalArgumentException naming the parent and what the source allows
   */
  static void requireChainInside(AdapterSource source, java.nio.file.Path dir, AdapterChain chain) {
    for (AdapterParent p : chain.nodes()) {
      try (var unused = source.resolve(p.location())) {
        // resolvable: inside the allowed roots
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "adapter " + dir + ": its parent " + p.location() + " is refused: " + e.getMessage(),
            e);
      }
    }
  }

  /**
   * Reads the PEFT adapter in {@code dir} for {@code base} into its decoding form (a child with its
   * additive parent chain as one exact LoRA, {@link ChainedAdapters#forDecoding}).
   */
  public static DecodeAdapter load(String name, java.nio.file.Path dir, ModelWeights base) {
    return DecodeAdapter.of(
        name, ChainedAdapters.forDecoding(dir, AdapterChain.of(dir.toString()), base));
  }

  /**
   * A registry whose adapters are read by {@code weights} (e.g. with a message naming the base a
   * mismatched adapter was saved for) and then put in decoding form.
   */
  public AdapterRegistry(
      AdapterSource source, long budgetBytes, AdapterLoader<LoraWeights> weights) {
    this.cache =
        new AdapterCache<>(
            budgetBytes,
            source,
            (name, dir) -> DecodeAdapter.of(name, weights.load(name, dir)),
            DecodeAdapter::bytes,
            a -> {});
  }

  /**
   * This JVM's registry for the base keyed {@code key} (e.g. the checkpoint path and content hash),
   * made on first use.
   */
  public static AdapterRegistry forBase(
      String key, ModelWeights base, Supplier<AdapterSource> source, long budgetBytes) {
    return PER_JVM.computeIfAbsent(key, k -> new AdapterRegistry(base, source.get(), budgetBytes));
  }

  public AdapterCache<DecodeAdapter> cache() {
    return cache;
  }

  /**
   * Leases the named adapters (loading any not in RAM) as one mix; the lease keeps them in RAM
   * until closed, whatever is unloaded or evicted meanwhile.
   *
   * @param names adapter names (empty: the base)
   * @param weights one weight per name
   * @throws IllegalArgumentException for an unknown or unloadable adapter, or a composition the
   *     methods do not allow; nothing stays leased
   */
  public MixLease acquire(List<String> names, float[] weights) {
    List<AdapterLease<DecodeAdapter>> leases = new ArrayList<>();
    try {
      List<DecodeAdapter> adapters = new ArrayList<>();
      for (String name : names) {
        AdapterLease<DecodeAdapter> lease = cache.acquire(name);
        leases.add(lease);
        adapters.add(lease.value());
      }
      return new MixLease(new AdapterMix(adapters, weights), leases);
    } catch (RuntimeException e) {
      leases.forEach(AdapterLease::close);
      throw e;
    }
  }

  /** A request's adapters, held in RAM until {@link #close}. */
  public static final class MixLease implements AutoCloseable {
    private final AdapterMix mix;
    private final List<AdapterLease<DecodeAdapter>> leases;

    MixLease(AdapterMix mix, List<AdapterLease<DecodeAdapter>> leases) {
      this.mix = mix;
      this.leases = List.copyOf(leases);
    }

    public AdapterMix mix() {
      return mix;
    }

    @Override
    public void close() {
      leases.forEach(AdapterLease::close);
    }
  }
}
