package io.loraspark.pipeline.ml;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.lora.DeltaLoraParams;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.optim.LrSchedule;
import java.util.List;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.tuning.ParamGridBuilder;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/** Params: the trainer's defaults, one clear line for each bad value, schema checks by name. */
class LoraParamsTest {
  static final StructType TOKENS =
      new StructType()
          .add("input_ids", DataTypes.createArrayType(DataTypes.IntegerType))
          .add("labels", DataTypes.createArrayType(DataTypes.IntegerType));

  @Test
  void defaultsAreTheTrainCommandsDefaults() {
    LoraEstimator est = new LoraEstimator();
    assertThat(est.loraConfig())
        .isEqualTo(
            new LoraConfig(8, 16.0, 0.0, Projection.parseList("q,k,v,o,gate,up,down"), false));
    assertThat(est.trainConfig()).isEqualTo(TrainConfig.defaults(100, 8, 2e-4, 1.0, 42));
    assertThat(est.getInputIdsCol()).isEqualTo("input_ids");
    assertThat(est.getLabelsCol()).isEqualTo("labels");
    assertThat(est.getSegmentIdsCol()).isEqualTo("segment_ids");
    assertThat(est.getRecomputeActivations()).as("activations kept, as train's default").isFalse();
    est.setRank(4).setSteps(30);
    assertThat(est.getAlpha()).as("alpha follows rank while unset").isEqualTo(8.0);
    assertThat(est.getWarmupSteps()).as("warmup follows steps while unset").isEqualTo(3);
    assertThat(est.setSchedule("linear").trainConfig().schedule())
        .isEqualTo(LrSchedule.Kind.LINEAR);
  }

  @Test
  void badValuesNameTheParamAndTheValidRange() {
    LoraEstimator est = new LoraEstimator();
    assertThatThrownBy(() -> est.setRank(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Cannot set rank to 0: must be an integer in [1, 4096]");
    assertThatThrownBy(() -> new ParamGridBuilder().addGrid(est.rank(), new int[] {2, 0}).build())
        .as("a grid value is checked the same way")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Cannot set rank to 0: must be an integer in [1, 4096]");
    assertThatThrownBy(() -> est.setDropout(1.0))
        .hasMessage("Cannot set dropout to 1.0: must be a finite number in [0, 1)");
    assertThatThrownBy(() -> est.setLrRatio(Double.NaN))
        .hasMessage("Cannot set lrRatio to NaN: must be a finite number > 0");
    assertThatThrownBy(() -> est.setTargets("q,x"))
        .hasMessage(
            "Cannot set targets to q,x: must be a comma-separated subset of q,k,v,o,gate,up,down");
    assertThatThrownBy(() -> est.setSchedule("step"))
        .hasMessageStartingWith("Cannot set schedule to step: must be one of");
    assertThatThrownBy(() -> est.setInputIdsCol(" "))
        .hasMessage("Cannot set inputIdsCol to  : must be a column name");
    assertThatThrownBy(() -> new PerplexityEvaluator().setMetricName("auc"))
        .hasMessage("Cannot set metricName to auc: must be perplexity or loss");
    assertThat(est.getRank()).as("a refused value leaves the param as it was").isEqualTo(8);
  }

  @Test
  void deltaLoraTakesItsLambdaAndStartStepFromTheParams() {
    LoraEstimator est = new LoraEstimator().setMethod("delta-lora").setSteps(100);
    DeltaLoraParams d = est.loraConfig().deltaLora();
    assertThat(d.updateRatio()).as("the paper's λ by default").isEqualTo(2.0);
    assertThat(d.startStep()).as("K = min(500, steps / 10) while unset").isEqualTo(10);
    d = est.setDeltaUpdateRatio(0.5).setDeltaStartStep(3).loraConfig().deltaLora();
    assertThat(d.updateRatio()).isEqualTo(0.5);
    assertThat(d.startStep()).isEqualTo(3);
    assertThat(est.setMethod("lora").loraConfig().deltaLora()).as("lora ignores them").isNull();
    assertThatThrownBy(() -> est.setDeltaStartStep(-1))
        .hasMessage("Cannot set deltaStartStep to -1: must be an integer >= 0");
  }

  @Test
  void paramsThatDoNotFitTogetherFailBeforeAnyWork() {
    LoraEstimator est = new LoraEstimator().setSteps(10).setWarmupSteps(20);
    assertThatThrownBy(() -> est.transformSchema(TOKENS))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Cannot set warmupSteps to 20: must be an integer in [0, steps=10]");
    assertThatThrownBy(new LoraEstimator()::getModelDir)
        .hasMessageContaining("modelDir is not set");
  }

  @Test
  void schemaChecksNameTheColumn() {
    LoraEstimator est = new LoraEstimator();
    assertThat(List.of(est.transformSchema(TOKENS).fieldNames()))
        .containsExactly("input_ids", "labels", "nll", "tokens");
    assertThatThrownBy(
            () -> est.transformSchema(new StructType().add("text", DataTypes.StringType)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("Column input_ids (inputIdsCol) does not exist; columns are [text]");
    StructType longs =
        new StructType()
            .add("input_ids", DataTypes.createArrayType(DataTypes.LongType))
            .add("labels", DataTypes.createArrayType(DataTypes.IntegerType));
    assertThatThrownBy(() -> est.transformSchema(longs))
        .hasMessage("Column input_ids must be array<int> but was array<bigint>");
    assertThatThrownBy(() -> est.setSegmentIdsCol("segs").transformSchema(TOKENS))
        .as("a segment column set explicitly must exist")
        .hasMessageContaining("Column segs (segmentIdsCol) does not exist");
    assertThatThrownBy(
            () -> new LoraEstimator().transformSchema(TOKENS.add("nll", DataTypes.DoubleType)))
        .hasMessage("Output column nll already exists.");
  }

  @Test
  void copyCarriesExtraParams() {
    LoraEstimator est = new LoraEstimator().setRank(4);
    LoraEstimator copy = est.copy(new ParamMap().put(est.lrRatio(), 8.0));
    assertThat(copy.uid()).isEqualTo(est.uid());
    assertThat(copy.getRank()).isEqualTo(4);
    assertThat(copy.getLrRatio()).isEqualTo(8.0);
    assertThat(est.getLrRatio()).isEqualTo(1.0);
  }
}
