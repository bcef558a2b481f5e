package io.loraspark.train.spark;

import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.io.FaultPoints;
import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.FusedTrainer;
import io.loraspark.train.loop.TrainedAdapter;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One Spark task's work: train a group of adapters fused on this executor's shared base model up to
 * {@code stopAt} steps (a rung of successive halving, or their full step count), then export each
 * as a PEFT directory. Safe to retry and to run again in a later round: every adapter resumes from
 * its newest intact checkpoint under {@code runDir/checkpoints/<adapter-id>/}, and outputs are
 * keyed by adapter id, never by attempt, so a retried task continues rather than repeats.
 *
 * @param modelDir base checkpoint directory, readable on every executor
 * @param dataUri preprocessing output or token JSONL (see {@link TrainingData})
 * @param runDir the run directory (a path every executor shares)
 * @param stopAt train up to this optimizer step (capped by each adapter's own step count)
 * @param threads OpenMP/BLAS threads for this task (its {@code spark.task.cpus})
 * @param checkpointEvery steps between checkpoints (0 = only when the adapter stops)
 * @param baseQuant how the executor's shared base stores its projection weights
 * @param recomputeActivations recompute each layer's activations in backward (see {@link
 *     io.loraspark.train.model.Workspace})
 * @param precision the frozen projections' GEMM precision, resolved on the executor
 */
public record GroupTask(
    String runId,
    int round,
    int group,
    String modelDir,
    String dataUri,
    String runDir,
    List<AdapterSpec> adapters,
    List<Replica> replicas,
    int stopAt,
    int threads,
    int checkpointEvery,
    BaseQuant baseQuant,
    boolean recomputeActivations,
    Precision precision)
    implements Serializable {

  /**
   * Which part of the training rows an adapter trains on: replica {@code index} of {@code count}
   * takes rows i with i mod count == index, so the replicas of one configuration see disjoint
   * subsets; {@link #ALL} is every row.
   */
  public record Replica(int index, int count) implements Serializable {
    public static final Replica ALL = new Replica(0, 1);

    public Replica {
      ModelConfig.require(
          count >= 1 && index >= 0 && index < count,
          "replica %d of %d is out of range",
          index,
          count);
    }

    /** This replica's rows. */
    public List<io.loraspark.train.model.TokenRow> of(
        List<io.loraspark.train.model.TokenRow> rows) {
      if (count == 1) {
        return rows;
      }
      List<io.loraspark.train.model.TokenRow> out = new ArrayList<>();
      for (int i = index; i < rows.size(); i += count) {
        out.add(rows.get(i));
      }
      return out;
    }
  }

  private static final Logger LOG = LoggerFactory.getLogger(GroupTask.class);

  public GroupTask {
    ModelConfig.require(baseQuant != null, "baseQuant must be set (none, int8 or nf4)");
    ModelConfig.require(precision != null, "precision must be set (fp32, bf16 or auto)");
    adapters = List.copyOf(adapters);
    replicas =
        replicas == null
            ? java.util.Collections.nCopies(adapters.size(), Replica.ALL)
            : List.copyOf(replicas);
    ModelConfig.require(!adapters.isEmpty(), "a task needs at least one adapter");
    ModelConfig.require(
        replicas.size() == adapters.size(),
        "%d replicas for %d adapters",
        replicas.size(),
        adapters.size());
    ModelConfig.require(stopAt > 0, "stopAt must be > 0 but was %d", stopAt);
  }

  /**
   * Writes the adapter into a hidden sibling directory and renames it over {@code dir} in one move,
   * so readers (and a retried or speculative copy of this task, which writes the same bytes) never
   * see a half-written adapter. A failed write removes its temporary directory; one left by a task
   * killed here is removed by {@link #removeLeftovers} once the run's tasks are done.
   */
  private void commit(Path dir, TrainedAdapter t, String resolvedPrecision) {
    Path tmp =
        dir.resolveSibling("." + dir.getFileName() + "." + java.util.UUID.randomUUID() + ".tmp");
    try {
      PeftAdapter.save(tmp, t.weights(), modelDir);
      if (t.spec().parent() != null) {
        io.loraspark.train.lora.AdapterChain.record(tmp, t.spec().parent());
      }
      AtomicFiles.writeString(
          tmp.resolve("lora_spark.json"),
          String.format(
              java.util.Locale.ROOT,
              "{\"run_id\": \"%s\", \"adapter_id\": \"%s\", \"steps\": %d, \"status\": \"%s\","
                  + " \"precision\": \"%s\"}%n",
              runId,
              t.spec().id(),
              t.outcome().steps(),
              t.outcome().status(),
              resolvedPrecision));
      FaultPoints.reach(FaultPoints.COMMIT);
      if (Files.exists(dir)) {
        Path old =
            dir.resolveSibling(
                "." + dir.getFileName() + "." + java.util.UUID.randomUUID() + ".old");
        Files.move(dir, old, StandardCopyOption.ATOMIC_MOVE);
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        AtomicFiles.deleteTree(old);
      } else {
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      }
    } catch (IOException | RuntimeException e) {
      try {
        AtomicFiles.deleteTree(tmp);
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      if (e instanceof IOException io) {
        throw new UncheckedIOException("cannot commit adapter " + dir + ": " + e, io);
      }
      throw (RuntimeException) e;
    }
  }

  /**
   * Deletes what killed writers leave behind under {@code runDir}: the hidden {@code .*.tmp} and
   * {@code .*.old} entries of adapter commits, checkpoint writes and {@link AtomicFiles} writes in
   * the run directory, {@code adapters/}, {@code rounds/} and each adapter's checkpoint directory.
   * Only safe when none of the run's tasks is running: the driver calls it after the last round.
   */
  public static void removeLeftovers(Path runDir) {
    List<Path> dirs = new ArrayList<>(List.of(runDir, runDir.resolve("adapters")));
    dirs.add(runDir.resolve("rounds"));
    Path checkpoints = checkpointRoot(runDir);
    if (Files.isDirectory(checkpoints)) {
      try (Stream<Path> s = Files.list(checkpoints)) {
        s.filter(Files::isDirectory).forEach(dirs::add);
      } catch (IOException e) {
        throw new UncheckedIOException(checkpoints + ": cannot list: " + e, e);
      }
    }
    for (Path d : dirs) {
      if (!Files.isDirectory(d)) {
        continue;
      }
      try (Stream<Path> s = Files.list(d)) {
        for (Path p :
            s.filter(p -> LEFTOVER.matcher(p.getFileName().toString()).matches()).toList()) {
          LOG.info("removing {} left by an interrupted write", p);
          AtomicFiles.deleteTree(p);
        }
      } catch (IOException e) {
        throw new UncheckedIOException(d + ": cannot remove leftovers: " + e, e);
      }
    }
  }

  private static final java.util.regex.Pattern LEFTOVER =
      java.util.regex.Pattern.compile("\\..+\\.(tmp|old)");

  /** Directory of the exported PEFT adapter of {@code adapterId} in {@code runDir}. */
  public static Path adapterDir(Path runDir, String adapterId) {
    return runDir.resolve("adapters").resolve(adapterId);
  }

  /** Directory holding every adapter's checkpoints in {@code runDir}. */
  public static Path checkpointRoot(Path runDir) {
    return runDir.resolve("checkpoints");
  }

  /**
   * Trains the group and returns one outcome per adapter, in group order.
   *
   * @param attempt the Spark task attempt number, reported back for the run log
   * @param progress called after every optimizer step of every adapter
   */
  public List<AdapterOutcome> run(
      int attempt, Consumer<io.loraspark.train.loop.StepMetrics> progress) {
    NativeThreads.configure(threads);
    Transformer model = BaseModelCache.get(Path.of(modelDir), baseQuant, precision);
    TrainingData.Split data =
        TrainingData.get(dataUri, io.loraspark.train.data.TokenLimits.of(model.config()));
    Path run = Path.of(runDir);
    List<List<io.loraspark.train.model.TokenRow>> rows = new ArrayList<>();
    for (Replica r : replicas) {
      List<io.loraspark.train.model.TokenRow> part = r.of(data.train());
      ModelConfig.require(
          !part.isEmpty(), "replica %d of %d has no training rows", r.index(), r.count());
      rows.add(part);
    }
    FusedTrainer trainer =
        FusedTrainer.withOwnRows(model, adapters, rows, data.eval(), 0)
            .checkpointing(checkpointRoot(run), checkpointEvery, 1)
            .recomputingActivations(recomputeActivations)
            .stopAt(stopAt);
    int resumed = trainer.resume();
    LOG.info(
        "run {} round {} group {} attempt {}: {} adapters ({} resumed) to step {}",
        runId,
        round,
        group,
        attempt,
        adapters.size(),
        resumed,
        stopAt);
    List<AdapterOutcome> out = new ArrayList<>();
    long t0 = System.nanoTime();
    List<TrainedAdapter> trained =
        trainer.run(
            m -> {
              progress.accept(m);
              FaultPoints.reach(FaultPoints.STEP);
            });
    double wall = (System.nanoTime() - t0) / 1e9;
    for (TrainedAdapter t : trained) {
      Path dir = adapterDir(run, t.spec().id());
      commit(dir, t, model.precision());
      out.add(t.outcome().savedTo(dir.toString(), attempt, wall));
    }
    return out;
  }
}
