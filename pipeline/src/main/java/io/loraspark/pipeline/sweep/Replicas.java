package io.loraspark.pipeline.sweep;

import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.lora.ReplicaAggregation;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.quant.BaseQuant;
import io.loraspark.train.spark.BaseModelCache;
import io.loraspark.train.spark.GroupTask;
import io.loraspark.train.spark.TrainingData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Consumer;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A configuration trained as several replicas on disjoint parts of the data: their state after a
 * round (mean losses) and, at the end, their exact aggregate (ΔW = Σ w_r s B_r A_r, weights by
 * training rows, re-factorised to the configuration's rank by {@link ReplicaAggregation}) scored on
 * the driver.
 */
final class Replicas {
  private Replicas() {}

  /**
   * One configuration's outcome after a round: its single adapter's, or for replicas their mean
   * losses and summed throughput (failed if any replica failed or did not report).
   */
  static AdapterOutcome combined(SweepPlan.Planned p, List<AdapterOutcome> reps) {
    if (reps.size() == 1) {
      return reps.get(0);
    }
    List<AdapterOutcome> reported = reps.stream().filter(Objects::nonNull).toList();
    double wall = reported.stream().mapToDouble(AdapterOutcome::wallSeconds).sum();
    for (AdapterOutcome r : reps) {
      if (r == null || r.status() != AdapterStatus.OK) {
        String why = r == null ? "a replica did not report" : r.adapterId() + ": " + r.failure();
        AdapterOutcome first = reported.isEmpty() ? null : reported.get(0);
        return new AdapterOutcome(
            p.spec().id(),
            AdapterStatus.FAILED,
            why,
            first == null ? 0 : first.steps(),
            Double.NaN,
            Double.NaN,
            Double.NaN,
            0,
            first == null ? 0 : first.trainableParams(),
            List.of(),
            "",
            0,
            wall);
      }
    }
    AdapterOutcome r0 = reps.get(0);
    return new AdapterOutcome(
        p.spec().id(),
        AdapterStatus.OK,
        "",
        r0.steps(),
        reps.stream().mapToDouble(AdapterOutcome::trainLoss).average().orElse(Double.NaN),
        reps.stream().mapToDouble(AdapterOutcome::evalLoss).average().orElse(Double.NaN),
        r0.baseEvalLoss(),
        reps.stream().mapToDouble(AdapterOutcome::tokensPerSecond).sum(),
        r0.trainableParams(),
        List.of(),
        "",
        0,
        wall);
  }

  /**
   * The finished replicated configuration {@code e} aggregated into {@code adapters/<id>/} under
   * {@code runDir} and scored on the eval rows: its entry with the aggregate's outcome.
   */
  static SweepRunner.Entry aggregate(
      SweepRunner.Entry e,
      Path model,
      BaseQuant baseQuant,
      String data,
      Path runDir,
      Consumer<String> progress) {
    SweepPlan.Planned p = e.planned();
    Transformer t = BaseModelCache.get(model, baseQuant);
    TrainingData.Split rows = TrainingData.get(data, TokenLimits.of(t.config()));
    List<LoraWeights> reps = new ArrayList<>();
    double[] w = new double[p.replicas()];
    for (int r = 0; r < p.replicas(); r++) {
      reps.add(
          PeftAdapter.load(Path.of(e.replicas().get(r).adapterDir()), t.config(), DataType.FLOAT));
      w[r] = new GroupTask.Replica(r, p.replicas()).of(rows.train()).size();
    }
    double total = Arrays.stream(w).sum();
    for (int r = 0; r < w.length; r++) {
      w[r] /= total;
    }
    LoraWeights agg = ReplicaAggregation.aggregate(reps, w, p.spec().lora().rank());
    Path dir = GroupTask.adapterDir(runDir, p.spec().id());
    PeftAdapter.save(dir, agg, model.toString());
    double eval = Double.NaN;
    if (!rows.eval().isEmpty()) {
      LossStats st =
          Evaluator.score(
              t, FusedLora.inference(agg), rows.eval(), Evaluator.DEFAULT_BATCH_SIZE, 0);
      eval = st.totalNll() / st.totalCount();
    }
    AdapterOutcome o = e.outcome();
    progress.accept(
        String.format(
            Locale.ROOT,
            "sweep: %s aggregated from %d replicas: eval %.4f (replica mean %.4f)",
            p.spec().id(),
            p.replicas(),
            eval,
            o.evalLoss()));
    AdapterOutcome aggregated =
        new AdapterOutcome(
            o.adapterId(),
            AdapterStatus.OK,
            "",
            o.steps(),
            o.trainLoss(),
            eval,
            o.baseEvalLoss(),
            o.tokensPerSecond(),
            agg.parameterCount(),
            o.metrics(),
            dir.toString(),
            0,
            o.wallSeconds());
    return e.with(aggregated, AdapterStatus.OK);
  }
}
