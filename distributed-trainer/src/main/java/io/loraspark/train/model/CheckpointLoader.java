package io.loraspark.train.model;

import io.loraspark.train.model.quant.BaseQuant;
import io.loraspark.train.model.quant.QuantizedLinears;
import io.loraspark.train.model.quant.QuantizedMatrix;
import io.loraspark.train.safetensors.SafetensorsCheckpoint;
import io.loraspark.train.safetensors.TensorInfo;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Loads a Hugging Face Llama-family checkpoint directory ({@code config.json} plus {@code
 * model.safetensors} or a sharded {@code model.safetensors.index.json}) into {@link ModelWeights}.
 * Every tensor's shape is checked against the config before it is read; F16/BF16 are widened.
 */
public final class CheckpointLoader {
  private CheckpointLoader() {}

  /** Loads {@code dir} in float32, the training precision on CPU. */
  public static ModelWeights load(Path dir) {
    return load(dir, DataType.FLOAT);
  }

  /**
   * Loads {@code dir} with weights in {@code dtype} (FLOAT for use, DOUBLE for gradient checks).
   *
   * @throws IllegalArgumentException naming the file and tensor when the config or a tensor is
   *     missing, malformed or of the wrong shape
   */
  public static ModelWeights load(Path dir, DataType dtype) {
    return load(dir, dtype, BaseQuant.NONE);
  }

  /**
   * Loads {@code dir} in float32 with the seven projections of every layer stored as {@code quant}:
   * each layer is read in float32, quantized and freed before the next, so the peak is one layer's
   * float weights above the quantized base.
   */
  public static ModelWeights load(Path dir, BaseQuant quant) {
    return load(dir, DataType.FLOAT, quant);
  }

  private static ModelWeights load(Path dir, DataType dtype, BaseQuant quant) {
    ModelConfig c = ModelConfig.load(dir);
    try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
      Reader r = new Reader(ckpt, dir, c, dtype);
      INDArray embed = r.matrix("model.embed_tokens.weight", c.vocabSize(), c.hiddenSize());
      List<LayerWeights> layers = new ArrayList<>();
      List<Map<Projection, QuantizedMatrix>> quantized = new ArrayList<>();
      for (int l = 0; l < c.numLayers(); l++) {
        LayerWeights w = r.layer(l);
        if (quant != BaseQuant.NONE) {
          quantized.add(QuantizedLinears.quantize(w, quant));
          QuantizedLinears.closeProjections(w);
          w = QuantizedLinears.withoutProjections(w);
        }
        layers.add(w);
      }
      INDArray norm = r.vector("model.norm.weight", c.hiddenSize());
      INDArray head;
      if (c.tieWordEmbeddings()) {
        head = embed;
      } else if (ckpt.contains("lm_head.weight")) {
        head = r.matrix("lm_head.weight", c.vocabSize(), c.hiddenSize());
      } else {
        throw new IllegalArgumentException(
            dir
                + ": tensor lm_head.weight is missing and config.json has tie_word_embeddings=false"
                + " (set it to true if the head is the embedding)");
      }
      return new ModelWeights(
          c,
          embed,
          layers,
          norm,
          head,
          quant == BaseQuant.NONE ? null : new QuantizedLinears(quant, quantized));
    }
  }

  /** Reads tensors by name with shape checks. */
  private record Reader(SafetensorsCheckpoint ckpt, Path dir, ModelConfig c, DataType dtype) {

    LayerWeights layer(int l) {
      String p = "model.layers." + l + ".";
      int cIn = c.hiddenSize();
      int f = c.intermediateSize();
      return new LayerWeights(
          vector(p + "input_layernorm.weight", cIn),
          matrix(p + "self_attn.q_proj.weight", c.qDim(), cIn),
          c.qkvBias() ? vector(p + "self_attn.q_proj.bias", c.qDim()) : null,
          matrix(p + "self_attn.k_proj.weight", c.kvDim(), cIn),
          c.qkvBias() ? vector(p + "self_attn.k_proj.bias", c.kvDim()) : null,
          matrix(p + "self_attn.v_proj.weight", c.kvDim(), cIn),
          c.qkvBias() ? vector(p + "self_attn.v_proj.bias", c.kvDim()) : null,
          matrix(p + "self_attn.o_proj.weight", cIn, c.qDim()),
          c.oBias() ? vector(p + "self_attn.o_proj.bias", cIn) : null,
          vector(p + "post_attention_layernorm.weight", cIn),
          matrix(p + "mlp.gate_proj.weight", f, cIn),
          matrix(p + "mlp.up_proj.weight", f, cIn),
          matrix(p + "mlp.down_proj.weight", cIn, f),
          c.mlpBias() ? vector(p + "mlp.gate_proj.bias", f) : null,
          c.mlpBias() ? vector(p + "mlp.up_proj.bias", f) : null,
          c.mlpBias() ? vector(p + "mlp.down_proj.bias", cIn) : null);
    }

    INDArray matrix(String name, int rows, int cols) {
      float[] data = read(name, new long[] {rows, cols});
      return Nd4j.create(data, new long[] {rows, cols}, 'c').castTo(dtype);
    }

    INDArray vector(String name, int len) {
      float[] data = read(name, new long[] {len});
      return Nd4j.create(data, new long[] {len}, 'c').castTo(dtype);
    }

    private float[] read(String name, long[] expected) {
      if (!ckpt.contains(name)) {
        throw new IllegalArgumentException(
            dir + ": tensor " + name + " is missing (config.json " + c.architecture() + ")");
      }
      TensorInfo info = ckpt.info(name);
      if (!Arrays.equals(info.shape(), expected)) {
        throw new IllegalArgumentException(
            dir
                + ": tensor "
                + name
                + " has shape "
                + Arrays.toString(info.shape())
                + " but config.json implies "
                + Arrays.toString(expected));
      }
      return ckpt.readFloats(name);
    }
  }
}
