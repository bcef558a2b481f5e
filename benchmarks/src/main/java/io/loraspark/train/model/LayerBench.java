package io.loraspark.train.model;

import io.loraspark.train.bench.SyntheticModel;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.nd4j.linalg.api.buffer.DataType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One decoder layer forward + loss + backward with a rank-8 LoRA on all seven projections, at the
 * 576-hidden benchmark shape with a small vocabulary (so the layer, not lm_head, dominates).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class LayerBench {
  static final int B = 4;
  static final int T = 256;
  static final int VOCAB = 256;

  Transformer model;
  Workspace ws;
  FusedLora lora;
  Batch batch;

  @Setup
  public void setup() {
    ModelConfig c =
        new ModelConfig(
            "LlamaForCausalLM",
            576,
            1536,
            1,
            9,
            3,
            64,
            VOCAB,
            2048,
            1e-6,
            10000.0,
            false,
            false,
            false,
            false,
            1,
            2);
    model = new Transformer(SyntheticModel.create(c, 0));
    ws = model.newWorkspace(B, T);
    LoraWeights w =
        LoraWeights.init(
            c, new LoraConfig(8, 16, 0.0, List.of(Projection.values()), false), 1, DataType.FLOAT);
    lora = FusedLora.inference(w);
    SplittableRandom rnd = new SplittableRandom(0);
    List<int[]> ids = new ArrayList<>();
    for (int r = 0; r < B; r++) {
      ids.add(rnd.ints(T, 0, VOCAB).toArray());
    }
    batch = Batch.padded(ids, null, 0);
  }

  @Benchmark
  public LossStats layerForwardBackward() {
    model.forward(batch, lora, ws);
    LossStats stats = model.loss(batch, ws);
    model.backward(batch, lora, ws, stats);
    return stats;
  }
}
