package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Small models and adapters for the lora tests (checkpoint writer adapted from TestCheckpoints).
 */
final class LoraTestModels {
  private LoraTestModels() {}

  /** The real pretrained tiny Llama bundled with the project (stories260K, tied head). */
  static final Path STORIES = Path.of("../models/stories260K");

  /** A small random architecture: C=16, 2 layers, 4 heads, 2 kv heads, HD=4, F=24, V=37. */
  static String configJson(String arch, boolean tied, boolean attentionBias) {
    return """
        {"architectures": ["%s"], "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "vocab_size": 37, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
         "rope_theta": 500.0, "tie_word_embeddings": %s, "attention_bias": %s}
        """
        .formatted(arch, tied, attentionBias);
  }

  /** The config of {@link #configJson} for an untied Llama without biases. */
  static ModelConfig smallLlama() {
    return parse(configJson("LlamaForCausalLM", false, false));
  }

  static ModelConfig parse(String json) {
    try {
      return ModelConfig.fromJson(new ObjectMapper().readTree(json));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Writes config.json and model.safetensors with N(0, 0.3) weights and norms near 1. */
  static Path writeRandomCheckpoint(Path dir, String configJson, long seed) throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("config.json"), configJson);
    ModelConfig c = parse(configJson);
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

  /** PEFT-initialised A (seeded) and a B filled with N(0, 0.05) values, so B·A is nonzero. */
  static LoraWeights adapter(ModelConfig model, LoraConfig config, long seed) {
    LoraWeights w = LoraWeights.init(model, config, seed, DataType.FLOAT);
    Random rnd = new Random(seed + 1);
    for (LoraWeights.Module m : w.modules()) {
      float[] v = new float[(int) m.b().length()];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (0.05 * rnd.nextGaussian());
      }
      m.b().assign(Nd4j.create(v, m.b().shape(), 'c'));
    }
    return w;
  }

  static LoraConfig lora(int rank, double alpha, List<Projection> targets) {
    return new LoraConfig(rank, alpha, 0.0, targets, false);
  }

  /** The raw IEEE bits of an array's values in C order. */
  static int[] bits(INDArray a) {
    float[] f = a.castTo(DataType.FLOAT).dup('c').data().asFloat();
    int[] out = new int[(int) a.length()];
    for (int i = 0; i < out.length; i++) {
      out[i] = Float.floatToRawIntBits(f[i]);
    }
    return out;
  }
}
