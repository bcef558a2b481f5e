package io.loraspark.pipeline.sweep;

import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.StepMetrics;
import java.util.List;

/** Planned adapters and outcomes as the sweep builds them, for the sweep core's unit tests. */
final class SweepFixtures {
  private SweepFixtures() {}

  /** Adapter {@code id} at rank {@code rank} and lr_ratio {@code ratio}, else the defaults. */
  static SweepPlan.Planned planned(String id, long rank, double ratio) {
    return SweepPlan.resolve(
        id,
        SettingValues.NONE
            .with(AdapterSettings.RANK, rank)
            .with(AdapterSettings.LR_RATIO, ratio)
            .with(AdapterSettings.STEPS, 40L));
  }

  /** An outcome of adapter {@code id} after {@code steps} steps, with two metrics rows. */
  static AdapterOutcome outcome(
      String id, AdapterStatus status, int steps, double evalLoss, long params) {
    return new AdapterOutcome(
        id,
        status,
        status == AdapterStatus.FAILED ? "step 3: non-finite loss NaN" : "",
        steps,
        4.5,
        evalLoss,
        5.25,
        1200.0,
        params,
        List.of(
            new StepMetrics(id, 1, 5.0, Double.NaN, 1e-3, 0.5, 100, 900.0),
            new StepMetrics(id, steps, 4.5, evalLoss, 2e-4, 0.25, 100, 1000.0)),
        "/runs/x/adapters/" + id,
        0,
        3.5);
  }

  static SweepRunner.Entry entry(
      SweepPlan.Planned p, AdapterStatus status, int round, double evalLoss, long params) {
    AdapterOutcome o =
        outcome(
            p.spec().id(),
            status == AdapterStatus.PRUNED ? AdapterStatus.OK : status,
            10 * round,
            evalLoss,
            params);
    return new SweepRunner.Entry(p, o, status, round, List.of(o), 3.5 * round);
  }
}
