package io.loraspark.train.model;

import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small random Hugging Face checkpoints for tests, written with the real safetensors writer. */
public final class TestModels {
  private TestModels() {}

  /** The real pretrained tiny Llama bundled with the project (stories260K, MIT). */
  public static final Path STORIES = Path.of("../models/stories260K");

  /** A small random Llama-family architecture: C=16, 2 layers, 4 heads, 2 kv heads, HD=4, F=24. */
  public static String config(String arch, boolean tied, boolean attentionBias) {
    return """
        {"architectures": ["%s"], "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 37, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
         "rope_theta": 500.0, "tie_word_embeddings": %s, "attention_bias": %s}
        """
        .formatted(arch, tied, attentionBias);
  }

  /**
   * Random training rows for the 37-token vocabulary of {@link #config}: {@code n} rows of length 5
   * + [0, {@code lengthSpread}) tokens drawn from ids 1-36, the first third of each unscored.
   *
   * @param seed seeds the lengths and ids, so the same arguments give the same rows
   * @param lengthSpread how many lengths from 5 up the rows may have
   */
  public static List<TokenRow> rows(int n, long seed, int lengthSpread) {
    Random rnd = new Random(seed);
    List<TokenRow> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int len = 5 + rnd.nextInt(lengthSpread);
      int[] ids = new int[len];
      int[] labels = new int[len];
      for (int t = 0; t < len; t++) {
        ids[t] = 1 + rnd.nextInt(36);
        labels[t] = t < len / 3 ? Batch.IGNORE : ids[t];
      }
      out.add(new TokenRow(ids, labels));
    }
    return out;
  }

  /** Writes config.json and model.safetensors with N(0, 0.3) weights and norms near 1. */
  public static Path writeRandom(Path dir, String configJson, long seed) {
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("config.json"), configJson);
      ModelConfig c =
          ModelConfig.fromJson(
              new com.fasterxml.jackson.databind.ObjectMapper().readTree(configJson));
      Random rnd = new Random(seed);
      Map<String, SafetensorsWriter.Tensor> t = new LinkedHashMap<>();
      put(t, "model.embed_tokens.weight", rnd, 1.0, 0, c.vocabSize(), c.hiddenSize());
      for (int l = 0; l < c.numLayers(); l++) {
        String p = "model.layers." + l + ".";
        put(t, p + "input_layernorm.weight", rnd, 0.2, 1, c.hiddenSize());
        for (Projection proj : Projection.values()) {
          String name = p + proj.modulePath();
          put(t, name + ".weight", rnd, 0.3, 0, proj.outFeatures(c), proj.inFeatures(c));
          boolean bias =
              switch (proj) {
                case Q, K, V -> c.qkvBias();
                case O -> c.oBias();
                default -> c.mlpBias();
              };
          if (bias) {
            put(t, name + ".bias", rnd, 0.3, 0, proj.outFeatures(c));
          }
        }
        put(t, p + "post_attention_layernorm.weight", rnd, 0.2, 1, c.hiddenSize());
      }
      put(t, "model.norm.weight", rnd, 0.2, 1, c.hiddenSize());
      if (!c.tieWordEmbeddings()) {
        put(t, "lm_head.weight", rnd, 0.5, 0, c.vocabSize(), c.hiddenSize());
      }
      SafetensorsWriter.write(dir.resolve("model.safetensors"), t, Map.of("format", "pt"));
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void put(
      Map<String, SafetensorsWriter.Tensor> t,
      String name,
      Random rnd,
      double std,
      double mean,
      long... shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    float[] data = new float[(int) n];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) (mean + std * rnd.nextGaussian());
    }
    t.put(name, SafetensorsWriter.Tensor.f32(shape, data));
  }
}
