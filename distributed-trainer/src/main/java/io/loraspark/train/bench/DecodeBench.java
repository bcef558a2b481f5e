package io.loraspark.train.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.cache.AdapterSource;
import io.loraspark.train.decode.AdapterMix;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.BatchDecoder;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.Request;
import io.loraspark.train.decode.Result;
import io.loraspark.train.decode.SamplingParams;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * {@code bench --decode}: KV-cached decoding throughput of S concurrent streams of seeded random
 * prompts, greedy with EOS ignored (every stream makes exactly N tokens), on the base or
 * round-robin over K random rank-R adapters on all seven targets. W untimed full runs come first.
 * Decode tokens/s counts only steps that carry no prompt rows.
 */
public final class DecodeBench {

  /**
   * @param promptTokens P, prompt length of every stream
   * @param newTokens N, tokens each stream makes
   * @param streams S, concurrent streams
   * @param adapters K (0: the base)
   * @param rank R of the adapters
   * @param threads kernel threads
   * @param warmup W untimed full runs
   * @param seed seeds prompts and adapters
   */
  public record Spec(
      int promptTokens,
      int newTokens,
      int streams,
      int adapters,
      int rank,
      int threads,
      int warmup,
      long seed,
      Precision precision) {
    public Spec {
      ModelConfig.require(
          promptTokens >= 1, "--prompt-tokens must be >= 1 but was %d", promptTokens);
      ModelConfig.require(newTokens >= 2, "--new-tokens must be >= 2 but was %d", newTokens);
      ModelConfig.require(streams >= 1, "--streams must be >= 1 but was %d", streams);
      ModelConfig.require(adapters >= 0, "--adapters must be >= 0 but was %d", adapters);
      ModelConfig.require(rank >= 1, "--rank must be >= 1 but was %d", rank);
      ModelConfig.require(threads >= 1, "--threads must be >= 1 but was %d", threads);
      ModelConfig.require(warmup >= 0, "--warmup must be >= 0 but was %d", warmup);
    }
  }

  private DecodeBench() {}

  /** Runs the benchmark on {@code base} and returns its JSON line. */
  public static ObjectNode run(ModelWeights base, String modelName, Spec s) {
    ModelConfig c = base.config();
    ModelConfig.require(
        s.promptTokens() + s.newTokens() <= c.maxPositions(),
        "--prompt-tokens + --new-tokens = %d exceeds max_position_embeddings=%d",
        s.promptTokens() + s.newTokens(),
        c.maxPositions());
    Kernels.threads(s.threads());
    DecodeEngine engine = new DecodeEngine(base, s.precision());
    Cached cached = s.adapters() == 0 ? null : cachedAdapters(base, s);
    List<AdapterMix> mixes = new ArrayList<>();
    if (cached != null) {
      for (AdapterRegistry.MixLease lease : cached.leases) {
        mixes.add(lease.mix());
      }
    }
    for (int w = 0; w < s.warmup(); w++) {
      once(engine, s, mixes);
    }
    Run run = once(engine, s, mixes);
    ObjectMapper json = new ObjectMapper();
    ObjectNode o = json.createObjectNode();
    o.put("model", modelName);
    BenchResult.putShape(o.putObject("shape"), c);
    o.put("prompt_tokens", s.promptTokens());
    o.put("new_tokens", s.newTokens());
    o.put("streams", s.streams());
    o.put("adapters", s.adapters());
    o.put("precision", engine.precision().key());
    o.put("rank", s.rank());
    o.put("threads", s.threads());
    o.put("warmup", s.warmup());
    o.put("decode_tokens_per_s", round(run.decodeTokens / (run.decodeNanos / 1e9)));
    o.put(
        "per_stream_tokens_per_s", round(run.decodeTokens / (run.decodeNanos / 1e9) / s.streams()));
    o.put("prefill_ms", round(median(run.prefillMs)));
    o.put("first_token_ms", round(median(run.firstTokenMs)));
    o.put("weights_bytes", base.totalBytes());
    if (cached != null) {
      double[] firstToken = switchCost(engine, s, mixes.get(0));
      o.put("first_token_ms_base", round(firstToken[0]));
      o.put("first_token_ms_adapter", round(firstToken[1]));
      o.put("adapter_switch_ms", round(firstToken[2]));
      o.put("adapter_cold_load_ms", round(median(cached.loadMs)));
      o.put("adapter_tensor_bytes", cached.tensorBytes);
      o.put("cache_bytes", cached.registry.cache().stats().bytesInUse());
      cached.leases.forEach(AdapterRegistry.MixLease::close);
    }
    return o;
  }

  /** The bench's adapters, saved as PEFT directories and loaded back through an adapter cache. */
  private static final class Cached {
    AdapterRegistry registry;
    final List<AdapterRegistry.MixLease> leases = new ArrayList<>();
    double[] loadMs;
    long tensorBytes;
  }

  /**
   * Saves K random adapters under a temporary root, loads each cold through an {@link
   * AdapterRegistry} (timed: read, validate, fold into decoding form) and leases them for the run.
   */
  private static Cached cachedAdapters(ModelWeights base, Spec s) {
    Cached c = new Cached();
    c.loadMs = new double[s.adapters()];
    Path root;
    try {
      root = Files.createTempDirectory("lora-bench-adapters");
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException("cannot make a temporary adapter root: " + e, e);
    }
    try {
      c.registry = new AdapterRegistry(base, AdapterSource.namesUnder(root), Long.MAX_VALUE);
      for (int k = 0; k < s.adapters(); k++) {
        String name = "bench-" + k;
        PeftAdapter.save(root.resolve(name), randomAdapter(base, s, k), null);
        long t0 = System.nanoTime();
        c.registry.cache().load(name);
        c.loadMs[k] = (System.nanoTime() - t0) / 1e6;
        AdapterRegistry.MixLease lease = c.registry.acquire(List.of(name), new float[] {1f});
        c.leases.add(lease);
        c.tensorBytes += lease.mix().adapters().get(0).bytes();
      }
    } finally {
      deleteTree(root);
    }
    return c;
  }

  private static void deleteTree(Path root) {
    try (java.util.stream.Stream<Path> files = Files.walk(root)) {
      for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(root + ": cannot delete: " + e, e);
    }
  }

  /**
   * The first-token time of one request alone on the base and on a cached adapter, in {@link
   * #SWITCH_PAIRS} pairs in this warm JVM, the order within a pair alternating so that neither side
   * always runs second: what switching to a cached adapter adds before the first token.
   *
   * @return {base ms, adapter ms, the median of the pairs' differences in ms}
   */
  private static double[] switchCost(DecodeEngine engine, Spec s, AdapterMix adapter) {
    int[] prompt =
        new Random(s.seed() + 1).ints(s.promptTokens(), 0, engine.config().vocabSize()).toArray();
    SamplingParams one = SamplingParams.greedy(1, Set.of());
    double[] base = new double[SWITCH_PAIRS];
    double[] with = new double[SWITCH_PAIRS];
    double[] difference = new double[SWITCH_PAIRS];
    for (int i = 0; i < SWITCH_PAIRS; i++) {
      for (int side = 0; side < 2; side++) {
        boolean onAdapter = (side + i) % 2 == 0;
        double ms =
            BatchDecoder.generate(
                        engine, new Request(prompt, onAdapter ? adapter : AdapterMix.NONE, one))
                    .firstTokenNanos()
                / 1e6;
        (onAdapter ? with : base)[i] = ms;
      }
      difference[i] = with[i] - base[i];
    }
    return new double[] {median(base), median(with), median(difference)};
  }

  private static final int SWITCH_PAIRS = 41;

  /** What one timed run measured. */
  private static final class Run {
    long decodeNanos;
    long decodeTokens;
    double[] prefillMs;
    double[] firstTokenMs;
  }

  private static Run once(DecodeEngine engine, Spec s, List<AdapterMix> mixes) {
    ModelConfig c = engine.config();
    BatchDecoder decoder = new BatchDecoder(engine, Math.max(64, s.streams()));
    Random rnd = new Random(s.seed());
    List<CompletableFuture<Result>> futures = new ArrayList<>();
    SamplingParams greedy = SamplingParams.greedy(s.newTokens(), Set.of());
    for (int i = 0; i < s.streams(); i++) {
      int[] prompt = new int[s.promptTokens()];
      for (int t = 0; t < prompt.length; t++) {
        prompt[t] = rnd.nextInt(c.vocabSize());
      }
      AdapterMix mix = mixes.isEmpty() ? AdapterMix.NONE : mixes.get(i % mixes.size());
      futures.add(decoder.submit(new Request(prompt, mix, greedy)));
    }
    Run run = new Run();
    while (decoder.busy()) {
      long t0 = System.nanoTime();
      decoder.step();
      long t1 = System.nanoTime();
      if (decoder.lastPrefillRows() == 0 && decoder.lastDecodeRows() > 0) {
        run.decodeNanos += t1 - t0;
        run.decodeTokens += decoder.lastDecodeRows();
      }
    }
    run.prefillMs = new double[futures.size()];
    run.firstTokenMs = new double[futures.size()];
    for (int i = 0; i < futures.size(); i++) {
      Result r = futures.get(i).join();
      run.prefillMs[i] = r.prefillNanos() / 1e6;
      run.firstTokenMs[i] = r.firstTokenNanos() / 1e6;
    }
    return run;
  }

  /** A rank-R LoRA on all seven targets with random A and B (seeded per adapter). */
  static LoraWeights randomAdapter(ModelWeights base, Spec s, int k) {
    return randomAdapter(base, s.rank(), s.seed(), k);
  }

  /**
   * Writes K random rank-R adapters for {@code base} as PEFT directories bench-0 .. bench-(K-1).
   */
  public static void writeAdapters(ModelWeights base, Path dir, int k, int rank, long seed) {
    for (int i = 0; i < k; i++) {
      PeftAdapter.save(dir.resolve("bench-" + i), randomAdapter(base, rank, seed, i), null);
    }
  }

  private static LoraWeights randomAdapter(ModelWeights base, int rank, long seed, int k) {
    LoraConfig config = new LoraConfig(rank, 2.0 * rank, 0.0, List.of(Projection.values()), false);
    LoraWeights w = LoraWeights.init(base, config, seed + k, DataType.FLOAT);
    org.nd4j.linalg.api.rng.Random rng =
        Nd4j.getRandomFactory().getNewRandomInstance(seed * 31 + k);
    for (LoraWeights.Module m : w.modules()) {
      m.b().assign(Nd4j.randn(Nd4j.create(DataType.FLOAT, m.b().shape()), rng).muli(0.01));
    }
    return w;
  }

  /**
   * Writes {@code weights} (a synthetic model) as a Hugging Face checkpoint in {@code out}:
   * config.json and F32 model.safetensors, so a peer (llama2.c through hf_to_llama2c.py) decodes
   * the same weights.
   */
  public static void writeModel(ModelWeights weights, java.nio.file.Path out) {
    ModelConfig c = weights.config();
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.putArray("architectures").add(c.architecture());
    o.put("model_type", "llama");
    o.put("hidden_size", c.hiddenSize());
    o.put("intermediate_size", c.intermediateSize());
    o.put("num_hidden_layers", c.numLayers());
    o.put("num_attention_heads", c.numHeads());
    o.put("num_key_value_heads", c.numKvHeads());
    o.put("vocab_size", c.vocabSize());
    o.put("max_position_embeddings", c.maxPositions());
    o.put("rms_norm_eps", c.rmsNormEps());
    o.put("rope_theta", c.ropeTheta());
    o.put("tie_word_embeddings", c.tieWordEmbeddings());
    o.put("torch_dtype", "float32");
    o.put("bos_token_id", c.bosTokenId());
    o.put("eos_token_id", c.eosTokenId());
    try {
      java.nio.file.Path staging = java.nio.file.Files.createTempDirectory("lora-bench-config");
      try {
        java.nio.file.Files.writeString(staging.resolve("config.json"), o.toPrettyString());
        io.loraspark.train.lora.LoraMerge.writeCheckpoint(weights, staging, out);
      } finally {
        java.nio.file.Files.deleteIfExists(staging.resolve("config.json"));
        java.nio.file.Files.deleteIfExists(staging);
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(out + ": cannot write the model: " + e, e);
    }
  }

  private static double median(double[] v) {
    double[] sorted = v.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  private static double round(double v) {
    return Math.round(v * 100) / 100.0;
  }
}
