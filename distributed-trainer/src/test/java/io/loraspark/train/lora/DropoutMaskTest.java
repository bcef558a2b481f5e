package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A float32 adapter writes its dropout masks straight into the mask buffer; a float64 one builds
 * them through a double array. Both must draw the same mask for the same (seed, step, layer,
 * projection): the LoRA branch of one q projection on the same inputs and weights then agrees to
 * float rounding (1e-5 relative), while a different step's masks move it by far more.
 */
class DropoutMaskTest {

  @Test
  void floatAndDoubleAdaptersDrawTheSameMasks() {
    ModelConfig c = ModelConfig.load(TestModels.STORIES);
    LoraConfig cfg = new LoraConfig(4, 8, 0.3, List.of(Projection.Q), false);
    LoraWeights wd = LoraWeights.init(c, cfg, 5, DataType.DOUBLE);
    LoraWeights wf = LoraWeights.init(c, cfg, 5, DataType.FLOAT);
    SplittableRandom rnd = new SplittableRandom(9);
    LoraWeights.Module md = wd.module(0, Projection.Q);
    LoraWeights.Module mf = wf.module(0, Projection.Q);
    INDArray b = Nd4j.createFromArray(rnd.doubles(md.b().length(), -0.5, 0.5).toArray());
    md.b().assign(b.reshape(md.b().shape()));
    mf.b().assign(md.b().castTo(DataType.FLOAT));
    mf.a().assign(md.a().castTo(DataType.FLOAT));
    int rows = 6;
    INDArray x =
        Nd4j.createFromArray(rnd.doubles((long) rows * c.hiddenSize(), -1, 1).toArray())
            .reshape(rows, c.hiddenSize());

    INDArray yd = branch(wd, x, 3);
    INDArray yf = branch(wf, x.castTo(DataType.FLOAT), 3).castTo(DataType.DOUBLE);
    double scale = yd.norm2Number().doubleValue();
    assertThat(scale).as("the branch is not zero").isPositive();
    assertThat(yf.sub(yd).norm2Number().doubleValue() / scale)
        .as("float32 branch against float64, same step")
        .isLessThan(1e-5);
    INDArray otherStep = branch(wd, x, 4);
    assertThat(otherStep.sub(yd).norm2Number().doubleValue() / scale)
        .as("another step's masks")
        .isGreaterThan(0.1);
  }

  /** y = s·B·A·dropout(x) for the q projection of layer 0 at {@code step}. */
  private static INDArray branch(LoraWeights w, INDArray x, long step) {
    FusedLora fused = new FusedLora();
    fused.bind(List.of(new FusedLora.Slot(w, 0, (int) x.rows(), 17)), true, step);
    INDArray y = Nd4j.create(x.dataType(), x.rows(), w.module(0, Projection.Q).b().rows());
    fused.forward(0, Projection.Q, x, y);
    return y;
  }
}
