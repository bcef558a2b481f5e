package io.loraspark.train.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A validated Hugging Face {@code config.json} for the supported Llama-family causal LMs.
 *
 * <p>Missing keys take Hugging Face's defaults: {@code head_dim} = hidden / heads, {@code
 * num_key_value_heads} = heads, {@code attention_bias} false for Llama/Mistral, q/k/v bias always
 * on for Qwen2, {@code rope_theta} 10000, {@code rms_norm_eps} 1e-6 ({@code 1e-6} is the
 * LlamaConfig default), {@code tie_word_embeddings} false (Qwen2: false as well).
 *
 * @param architecture one of {@link #SUPPORTED_ARCHITECTURES}
 * @param hiddenSize C, the residual width
 * @param intermediateSize F, the SwiGLU width
 * @param numLayers L
 * @param numHeads NH, query heads
 * @param numKvHeads NKV, key/value heads (GQA when smaller than NH; NH % NKV == 0)
 * @param headDim HD
 * @param vocabSize V
 * @param maxPositions the longest sequence the model supports
 * @param rmsNormEps epsilon inside RMSNorm
 * @param ropeTheta the rotary base
 * @param tieWordEmbeddings whether the LM head is the embedding matrix
 * @param qkvBias whether q/k/v projections carry a bias (Qwen2 always; Llama with attention_bias)
 * @param oBias whether o_proj carries a bias (Llama with attention_bias)
 * @param mlpBias whether gate/up/down carry a bias (Llama with mlp_bias)
 * @param bosTokenId BOS id or -1 when the config names none
 * @param eosTokenId EOS id or -1 when the config names none
 */
public record ModelConfig(
    String architecture,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    int vocabSize,
    int maxPositions,
    double rmsNormEps,
    double ropeTheta,
    boolean tieWordEmbeddings,
    boolean qkvBias,
    boolean oBias,
    boolean mlpBias,
    int bosTokenId,
    int eosTokenId) {
  /** Widest projection accepted (q width); far above any real model, below int overflow. */
  static final int MAX_WIDTH = 1 << 20;

  /** The architectures this engine implements, as named in {@code config.json}. */
  public static final List<String> SUPPORTED_ARCHITECTURES =
      List.of("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM");

  public ModelConfig {
    require(
        SUPPORTED_ARCHITECTURES.contains(architecture),
        "architecture %s is not supported; supported: %s",
        architecture,
        SUPPORTED_ARCHITECTURES);
    require(hiddenSize > 0, "hidden_size must be > 0 but was %d", hiddenSize);
    require(intermediateSize > 0, "intermediate_size must be > 0 but was %d", intermediateSize);
    require(numLayers > 0, "num_hidden_layers must be > 0 but was %d", numLayers);
    require(numHeads > 0, "num_attention_heads must be > 0 but was %d", numHeads);
    require(
        numKvHeads > 0 && numHeads % numKvHeads == 0,
        "num_key_value_heads must be > 0 and divide num_attention_heads=%d but was %d",
        numHeads,
        numKvHeads);
    require(
        headDim > 0 && headDim % 2 == 0,
        "head_dim must be a positive even number but was %d",
        headDim);
    require(
        (long) numHeads * headDim <= MAX_WIDTH,
        "num_attention_heads x head_dim = %d x %d exceeds %d",
        numHeads,
        headDim,
        MAX_WIDTH);
    require(vocabSize > 0, "vocab_size must be > 0 but was %d", vocabSize);
    require(maxPositions > 0, "max_position_embeddings must be > 0 but was %d", maxPositions);
    require(
        rmsNormEps > 0 && rmsNormEps < 1, "rms_norm_eps must be in (0, 1) but was %s", rmsNormEps);
    require(ropeTheta > 0, "rope_theta must be > 0 but was %s", ropeTheta);
  }

  /** Query width NH * HD. */
  public int qDim() {
    return numHeads * headDim;
  }

  /** Key/value width NKV * HD. */
  public int kvDim() {
    return numKvHeads * headDim;
  }

  /**
   * Whether an adapter made for {@code other} fits this model: same layer count and projection
   * widths (hidden, intermediate, query and key/value widths); vocabulary and RoPE may differ.
   */
  public boolean sameProjectionShapes(ModelConfig other) {
    return numLayers == other.numLayers
        && hiddenSize == other.hiddenSize
        && intermediateSize == other.intermediateSize
        && qDim() == other.qDim()
        && kvDim() == other.kvDim();
  }

  /** Reads and validates {@code dir/config.json}; errors name the file and key. */
  public static ModelConfig load(Path modelDir) {
    Path file = modelDir.resolve("config.json");
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(
          "Model directory "
              + modelDir
              + " has no config.json (expected a Hugging Face checkpoint)");
    }
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new IllegalArgumentException(
          file + " is not valid JSON: " + firstLine(e.getMessage()), e);
    }
    try {
      return fromJson(root);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }

  /** Builds a config from a parsed {@code config.json}, applying Hugging Face's defaults. */
  public static ModelConfig fromJson(JsonNode root) {
    require(root != null && root.isObject(), "config must be a JSON object");
    JsonNode archs = root.get("architectures");
    String arch;
    if (archs != null && archs.isArray() && archs.size() == 1 && archs.get(0).isTextual()) {
      arch = archs.get(0).asText();
    } else {
      String type = root.path("model_type").asText("");
      arch =
          switch (type) {
            case "llama" -> "LlamaForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            default ->
                throw new IllegalArgumentException(
                    "architectures must name one of "
                        + SUPPORTED_ARCHITECTURES
                        + " but was "
                        + (archs == null
                            ? "missing (model_type '" + type + "')"
                            : archs.toString()));
          };
    }
    require(
        SUPPORTED_ARCHITECTURES.contains(arch),
        "architecture %s is not supported; supported: %s",
        arch,
        SUPPORTED_ARCHITECTURES);
    boolean qwen = arch.equals("Qwen2ForCausalLM");
    int hidden = intKey(root, "hidden_size", -1);
    int heads = intKey(root, "num_attention_heads", -1);
    require(
        hidden > 0 && heads > 0 && hidden % heads == 0 || root.hasNonNull("head_dim"),
        "hidden_size=%d must be divisible by num_attention_heads=%d when head_dim is absent",
        hidden,
        heads);
    int headDim = root.hasNonNull("head_dim") ? intKey(root, "head_dim", -1) : hidden / heads;
    boolean attentionBias = boolKey(root, "attention_bias", false);
    return new ModelConfig(
        arch,
        hidden,
        intKey(root, "intermediate_size", -1),
        intKey(root, "num_hidden_layers", -1),
        heads,
        root.hasNonNull("num_key_value_heads") ? intKey(root, "num_key_value_heads", -1) : heads,
        headDim,
        intKey(root, "vocab_size", -1),
        root.hasNonNull("max_position_embeddings")
            ? intKey(root, "max_position_embeddings", -1)
            : 2048,
        doubleKey(root, "rms_norm_eps", 1e-6),
        doubleKey(root, "rope_theta", 10000.0),
        boolKey(root, "tie_word_embeddings", false),
        qwen || attentionBias,
        !qwen && attentionBias,
        boolKey(root, "mlp_bias", false),
        firstId(root, "bos_token_id"),
        firstId(root, "eos_token_id"));
  }

  private static int intKey(JsonNode root, String key, int missing) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      require(missing != -1, "required key %s is missing", key);
      return missing;
    }
    require(
        n.canConvertToInt() && n.isIntegralNumber(), "%s must be an integer but was %s", key, n);
    return n.intValue();
  }

  private static double doubleKey(JsonNode root, String key, double missing) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      return missing;
    }
    require(n.isNumber(), "%s must be a number but was %s", key, n);
    return n.doubleValue();
  }

  private static boolean boolKey(JsonNode root, String key, boolean missing) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      return missing;
    }
    require(n.isBoolean(), "%s must be true or false but was %s", key, n);
    return n.booleanValue();
  }

  /** Token id keys may be an int or a list of ints (HF allows several EOS ids); -1 when absent. */
  private static int firstId(JsonNode root, String key) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) {
      return -1;
    }
    if (n.isArray() && n.size() > 0) {
      n = n.get(0);
    }
    require(
        n.isIntegralNumber() && n.canConvertToInt() && n.intValue() >= 0,
        "%s must be a non-negative integer token id but was %s",
        key,
        n);
    return n.intValue();
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  /** Throws IllegalArgumentException with the formatted message unless {@code ok}. */
  public static void require(boolean ok, String format, Object... args) {
    if (!ok) {
      throw new IllegalArgumentException(String.format(format, args));
    }
  }
}
