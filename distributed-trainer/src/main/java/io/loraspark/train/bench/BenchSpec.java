package io.loraspark.train.bench;

import static io.loraspark.train.model.ModelConfig.require;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.util.List;

/**
 * What one benchmark run measures: a synthetic Llama-family model shape, the batch each adapter
 * trains on, the LoRA shape, the number of fused adapters, native threads and step counts.
 *
 * @param hidden C
 * @param layers L
 * @param heads NH
 * @param kvHeads NKV, divides NH
 * @param ffn F
 * @param vocab V
 * @param tied whether lm_head shares the embedding
 * @param batch B, rows per adapter
 * @param seq T
 * @param rank R
 * @param targets adapted projections
 * @param adapters K, adapters trained in one fused batch of K·B rows
 * @param threads OpenBLAS threads (the GEMMs), also the threads of the fused Java kernels
 * @param opThreads ND4J/OpenMP threads of the ND4J ops the fused kernels do not cover
 * @param steps timed steps
 * @param warmup untimed steps before them
 * @param seed seed of the random weights and tokens
 * @param baseQuant how the base's projections are stored (dequantised per GEMM unless none)
 * @param recompute whether backward recomputes each layer's activations (one layer's kept)
 * @param precision the frozen projections' GEMM precision (auto resolves in this JVM)
 */
public record BenchSpec(
    int hidden,
    int layers,
    int heads,
    int kvHeads,
    int ffn,
    int vocab,
    boolean tied,
    int batch,
    int seq,
    int rank,
    List<Projection> targets,
    int adapters,
    int threads,
    int opThreads,
    int steps,
    int warmup,
    long seed,
    BaseQuant baseQuant,
    boolean recompute,
    Precision precision) {

  /** A run on a float32 base in fp32. */
  public BenchSpec(
      int hidden,
      int layers,
      int heads,
      int kvHeads,
      int ffn,
      int vocab,
      boolean tied,
      int batch,
      int seq,
      int rank,
      List<Projection> targets,
      int adapters,
      int threads,
      int opThreads,
      int steps,
      int warmup,
      long seed) {
    this(
        hidden,
        layers,
        heads,
        kvHeads,
        ffn,
        vocab,
        tied,
        batch,
        seq,
        rank,
        targets,
        adapters,
        threads,
        opThreads,
        steps,
        warmup,
        seed,
        BaseQuant.NONE,
        false,
        Precision.FP32);
  }

  public BenchSpec {
    require(batch > 0, "batch must be > 0 but was %d", batch);
    require(seq > 1, "seq must be > 1 but was %d", seq);
    require(rank > 0, "rank must be > 0 but was %d", rank);
    require(adapters > 0, "adapters must be > 0 but was %d", adapters);
    require(threads > 0, "threads must be > 0 but was %d", threads);
    require(opThreads > 0, "op threads must be > 0 but was %d", opThreads);
    require(steps > 0, "steps must be > 0 but was %d", steps);
    require(warmup >= 0, "warmup must be >= 0 but was %d", warmup);
    require(precision != null, "precision must be set (fp32, bf16 or auto)");
    require(hidden % Math.max(heads, 1) == 0, "heads=%d must divide hidden=%d", heads, hidden);
    targets = List.copyOf(targets);
    config(hidden, layers, heads, kvHeads, ffn, vocab, tied, seq); // validates the shape
  }

  /** The model shape as a config (head_dim = hidden / heads, max positions = max(T, 2048)). */
  public ModelConfig modelConfig() {
    return config(hidden, layers, heads, kvHeads, ffn, vocab, tied, seq);
  }

  /**
   * Checks that a checkpoint's config has this spec's shape and fits its sequence length.
   *
   * @param source the checkpoint directory, named in the error
   * @throws IllegalArgumentException naming the config key and the bench flag that differ
   */
  public void requireShapeOf(ModelConfig c, Object source) {
    ModelConfig mine = modelConfig();
    Object[][] pairs = {
      {"hidden_size", "--hidden", mine.hiddenSize(), c.hiddenSize()},
      {"num_hidden_layers", "--layers", mine.numLayers(), c.numLayers()},
      {"num_attention_heads", "--heads", mine.numHeads(), c.numHeads()},
      {"num_key_value_heads", "--kv-heads", mine.numKvHeads(), c.numKvHeads()},
      {"head_dim", "--hidden / --heads", mine.headDim(), c.headDim()},
      {"intermediate_size", "--ffn", mine.intermediateSize(), c.intermediateSize()},
      {"vocab_size", "--vocab", mine.vocabSize(), c.vocabSize()},
      {"tie_word_embeddings", "--tied", mine.tieWordEmbeddings(), c.tieWordEmbeddings()}
    };
    for (Object[] p : pairs) {
      require(
          p[2].equals(p[3]),
          "%s/config.json has %s %s but bench was given %s %s",
          source,
          p[0],
          p[3],
          p[1],
          p[2]);
    }
    require(
        seq <= c.maxPositions(),
        "%s/config.json has max_position_embeddings %d, below --seq %d",
        source,
        c.maxPositions(),
        seq);
  }

  /** Tokens of one adapter's batch, B·T. */
  public long tokensPerAdapter() {
    return (long) batch * seq;
  }

  private static ModelConfig config(
      int hidden, int layers, int heads, int kvHeads, int ffn, int vocab, boolean tied, int seq) {
    require(heads > 0, "heads must be > 0 but was %d", heads);
    return new ModelConfig(
        "LlamaForCausalLM",
        hidden,
        ffn,
        layers,
        heads,
        kvHeads,
        hidden / heads,
        vocab,
        Math.max(seq, 2048),
        1e-6,
        10000.0,
        tied,
        false,
        false,
        false,
        1,
        2);
  }
}
