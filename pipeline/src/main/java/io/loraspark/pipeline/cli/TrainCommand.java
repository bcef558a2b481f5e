package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.sweep.AdapterSettings;
import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.FusedTrainer;
import io.loraspark.train.loop.StepMetrics;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.loop.TrainedAdapter;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.DeltaLoraParams;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import io.loraspark.train.optim.LrSchedule;
import io.loraspark.train.spark.TrainingData;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.IDefaultValueProvider;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

/** {@code train}: one LoRA adapter on one machine, exported as a PEFT directory. */
@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    defaultValueProvider = TrainCommand.SettingDefaults.class,
    description = {
      "Trains one LoRA adapter and writes a PEFT adapter directory at OUTPUT, plus metrics.csv.",
      "DATA is the output of preprocess (its root or shards/; its split column decides train and"
          + " eval) or JSONL of {\"input_ids\": [...], \"labels\": [...]} (labels -100 are not"
          + " trained on; without --eval-data a stable 10%% by a hash of the ids is held out)."
    })
final class TrainCommand implements Callable<Integer> {
  /** The adapter options' defaults, from {@link AdapterSettings} (the one table). */
  static final class SettingDefaults implements IDefaultValueProvider {
    @Override
    public String defaultValue(ArgSpec arg) {
      return arg instanceof OptionSpec o
          ? AdapterSettings.byTrainOption(o.longestName())
              .map(AdapterSettings.Setting::defaultArgument)
              .orElse(null)
          : null;
    }
  }

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--config",
      description =
          "sweep YAML: trains every adapter of the grid on Spark (local[*] unless the config or"
              + " spark-submit names a master) and writes a ranked run directory")
  Path config;

  @Option(
      names = "--run-id",
      description = "run id for --config (default: the config's or a timestamp)")
  String runId;

  @Option(names = "--model", description = "Hugging Face checkpoint directory")
  Path model;

  @Option(names = "--data", description = "training JSONL")
  Path data;

  @Option(names = "--eval-data", description = "held-out JSONL for eval loss")
  Path evalData;

  @Option(
      names = "--output",
      description = "PEFT adapter directory to write (with --config: the run directory)")
  Path output;

  @Option(
      names = "--method",
      description =
          "adapter method: lora, lora-fa, dora, pissa, vera, adalora or delta-lora (default"
              + " ${DEFAULT-VALUE})")
  String method;

  @Option(
      names = "--delta-update-ratio",
      description =
          "delta-lora only: λ, W moves by λ x the change of s·B·A after the start step (default 2,"
              + " the paper's)")
  Double deltaUpdateRatio;

  @Option(
      names = "--delta-start-step",
      description =
          "delta-lora only: K, the first optimizer step (0-based) whose update moves W (default"
              + " min(500, steps / 10))")
  Integer deltaStartStep;

  @Option(
      names = "--parent",
      paramLabel = "DIR",
      description =
          "a PEFT adapter directory (path or URI) to train on top of, frozen with its own parents;"
              + " the child records its content hash")
  String parent;

  @Option(names = "--rank", description = "LoRA rank r (default ${DEFAULT-VALUE})")
  int rank;

  @Option(names = "--alpha", description = "lora_alpha (default 2 x rank)")
  Double alpha;

  @Option(names = "--dropout", description = "LoRA dropout (default ${DEFAULT-VALUE})")
  double dropout;

  @Option(names = "--rslora", description = "scale by alpha/sqrt(r) (rsLoRA)")
  boolean rsLora;

  @Option(names = "--lr", description = "learning rate of A (default ${DEFAULT-VALUE})")
  double lr;

  @Option(
      names = "--lr-ratio",
      description = "LoRA+ ratio: B gets lr x ratio (default ${DEFAULT-VALUE})")
  double lrRatio;

  @Option(names = "--targets", description = "projections (default ${DEFAULT-VALUE})")
  String targets;

  @Option(names = "--steps", description = "optimizer steps (default ${DEFAULT-VALUE})")
  int steps;

  @Option(names = "--batch-size", description = "rows per micro-batch (default ${DEFAULT-VALUE})")
  int batchSize;

  @Option(names = "--grad-accum", description = "micro-batches per step (default ${DEFAULT-VALUE})")
  int gradAccum;

  @Option(names = "--warmup", description = "warmup steps (default 10%% of steps)")
  Integer warmup;

  @Option(names = "--schedule", description = "constant|linear|cosine (default ${DEFAULT-VALUE})")
  String schedule;

  @Option(names = "--weight-decay", description = "AdamW weight decay (default ${DEFAULT-VALUE})")
  double weightDecay;

  @Option(names = "--max-grad-norm", description = "clip, 0 = none (default ${DEFAULT-VALUE})")
  double maxGradNorm;

  @Option(names = "--eval-every", description = "eval cadence in steps (default ${DEFAULT-VALUE})")
  int evalEvery;

  @Option(names = "--seed", description = "seed (default ${DEFAULT-VALUE})")
  long seed;

  @Option(
      names = "--base-quant",
      defaultValue = "none",
      description =
          "store the frozen base's projection weights as none (float32), int8 (per-row absmax)"
              + " or nf4 (QLoRA's 4-bit NormalFloat, blocks of 64) and dequantise them per GEMM"
              + " (default ${DEFAULT-VALUE})")
  String baseQuant;

  @Option(
      names = "--precision",
      defaultValue = "auto",
      description =
          "the GEMMs of the frozen weights and attention: fp32, bf16 (oneDNN bf16 matmuls, f32"
              + " accumulation; adapters, optimizer, norms, softmax and loss stay fp32) or auto (bf16 where the CPU has"
              + " AMX, else fp32) (default ${DEFAULT-VALUE})")
  String precision;

  @Option(
      names = "--recompute-activations",
      description =
          "recompute each layer's activations during backward instead of keeping every layer's:"
              + " the same gradients, one layer's activations in memory, about a third more"
              + " compute (for long sequences)")
  boolean recomputeActivations;

  @Option(names = "--quiet", description = "no progress on stderr")
  boolean quiet;

  @Option(
      names = "--checkpoint-every",
      defaultValue = "50",
      description =
          "steps between resumable checkpoints under OUTPUT/checkpoints (0 = only at the end;"
              + " default ${DEFAULT-VALUE})")
  int checkpointEvery;

  @Option(
      names = "--save-total-limit",
      defaultValue = "2",
      description = "checkpoints kept per adapter (default ${DEFAULT-VALUE})")
  int saveTotalLimit;

  @Option(
      names = "--no-resume",
      description =
          "start from scratch even if OUTPUT/checkpoints holds a checkpoint of this run (by"
              + " default an interrupted run resumes exactly where its last checkpoint stopped)")
  boolean noResume;

  @Override
  public Integer call() {
    if (config != null) {
      return SweepCommand.run(config, output, runId, quiet, spec.commandLine());
    }
    if (model == null || data == null || output == null) {
      throw new IllegalArgumentException(
          "train needs --model, --data and --output (or --config FILE for a sweep)");
    }
    checkRanges();
    AdapterSpec adapter = adapterSpec();
    Precision setting = Precision.parse(precision);
    Transformer transformer =
        setting.model(CheckpointLoader.load(model, BaseQuant.parse(baseQuant)));
    TrainingData.Split rows = TrainRows.read(data, evalData, TokenLimits.of(transformer.config()));
    TrainedAdapter result = train(transformer, adapter, rows);
    writeOutputs(result);
    printSummary(result, transformer);
    return result.outcome().status() == AdapterStatus.OK ? Main.OK : Main.FAILURE;
  }

  /**
   * Each adapter option's value (given or defaulted) within its setting's range ({@link
   * AdapterSettings}), named by its flag: "--rank must be an integer in [1, 4096] but was 0".
   */
  void checkRanges() {
    for (AdapterSettings.Setting<?> s : AdapterSettings.ALL) {
      if (s.trainOption() != null && spec.findOption(s.trainOption()).getValue() != null) {
        s.check(s.trainOption(), spec.findOption(s.trainOption()).getValue());
      }
    }
    if (deltaUpdateRatio != null) {
      AdapterSettings.DELTA_UPDATE_RATIO.check("--delta-update-ratio", deltaUpdateRatio);
    }
    if (deltaStartStep != null) {
      AdapterSettings.DELTA_START_STEP.check("--delta-start-step", deltaStartStep);
    }
  }

  /** The adapter the options describe, named after OUTPUT. */
  private AdapterSpec adapterSpec() {
    LoraConfig lora =
        new LoraConfig(
            rank,
            alpha == null ? 2.0 * rank : alpha,
            dropout,
            Projection.parseList(targets),
            rsLora,
            LoraMethod.parse(method));
    if (lora.method() == LoraMethod.DELTA_LORA) {
      lora =
          lora.withDeltaLora(DeltaLoraParams.of(deltaUpdateRatio, deltaStartStep).resolved(steps));
    } else if (deltaUpdateRatio != null || deltaStartStep != null) {
      throw new IllegalArgumentException(
          "--delta-update-ratio and --delta-start-step need --method delta-lora, not " + method);
    }
    TrainConfig train =
        new TrainConfig(
            steps,
            batchSize,
            gradAccum,
            lr,
            lrRatio,
            weightDecay,
            warmup == null ? steps / 10 : warmup,
            LrSchedule.Kind.parse(schedule),
            maxGradNorm,
            evalEvery,
            seed);
    String id = output.getFileName().toString().replaceAll("[^A-Za-z0-9._-]", "_");
    return new AdapterSpec(
        id.isEmpty() ? "adapter" : id,
        lora,
        train,
        parent == null ? null : AdapterParent.of(parent));
  }

  /** Trains the adapter, resuming from OUTPUT/checkpoints unless --no-resume. */
  private TrainedAdapter train(
      Transformer transformer, AdapterSpec adapter, TrainingData.Split rows) {
    PrintWriter err = spec.commandLine().getErr();
    Path checkpoints = output.resolve(CHECKPOINTS);
    if (noResume) {
      try {
        AtomicFiles.deleteTree(checkpoints);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot delete " + checkpoints + ": " + e, e);
      }
    }
    FusedTrainer trainer =
        new FusedTrainer(transformer, List.of(adapter), rows.train(), rows.eval(), 0)
            .checkpointing(checkpoints, checkpointEvery, saveTotalLimit)
            .recomputingActivations(recomputeActivations);
    if (trainer.resume(note -> err.println("train: " + note)) > 0 && !quiet) {
      err.println("train: resumed from the last checkpoint under " + checkpoints);
    }
    return trainer.run(m -> progress(err, m)).get(0);
  }

  /** The one JSON line on stdout (the CLI output contract). */
  private void printSummary(TrainedAdapter result, Transformer transformer) {
    ObjectNode out = ScoreInput.STRICT.createObjectNode();
    out.put("adapter", output.toString());
    out.put("status", result.outcome().status().fileName());
    if (!result.outcome().failure().isEmpty()) {
      out.put("failure", result.outcome().failure());
    }
    out.put("steps", result.outcome().steps());
    out.put("train_loss", result.outcome().trainLoss());
    out.put("eval_loss", result.outcome().evalLoss());
    out.put("base_eval_loss", result.outcome().baseEvalLoss());
    out.put("tokens_per_s", result.outcome().tokensPerSecond());
    out.put("trainable_params", result.outcome().trainableParams());
    out.put("precision", transformer.precision());
    spec.commandLine().getOut().println(out);
  }

  /** Checkpoints live beside the exported adapter, as Hugging Face's Trainer keeps them. */
  static final String CHECKPOINTS = "checkpoints";

  private void progress(PrintWriter err, StepMetrics m) {
    if (quiet) {
      return;
    }
    err.printf(
        Locale.ROOT,
        "train %s step %d/%d loss %.4f%s lr %.2e %.0f tok/s%n",
        m.adapterId(),
        m.step(),
        steps,
        m.trainLoss(),
        Double.isNaN(m.evalLoss()) ? "" : String.format(Locale.ROOT, " eval %.4f", m.evalLoss()),
        m.lr(),
        m.tokensPerSecond());
  }

  private void writeOutputs(TrainedAdapter result) {
    PeftAdapter.save(output, result.weights(), model.toAbsolutePath().normalize().toString());
    if (result.spec().parent() != null) {
      AdapterChain.record(output, result.spec().parent());
    }
    StringBuilder csv =
        new StringBuilder(
            "adapter_id,step,train_loss,eval_loss,lr,grad_norm,tokens,tokens_per_s\n");
    for (StepMetrics m : result.outcome().metrics()) {
      csv.append(
          String.format(
              Locale.ROOT,
              "%s,%d,%.6f,%s,%.6e,%.6f,%d,%.1f%n",
              m.adapterId(),
              m.step(),
              m.trainLoss(),
              Double.isNaN(m.evalLoss()) ? "" : String.format(Locale.ROOT, "%.6f", m.evalLoss()),
              m.lr(),
              m.gradNorm(),
              m.tokens(),
              m.tokensPerSecond()));
    }
    try {
      Files.writeString(output.resolve("metrics.csv"), csv);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + output.resolve("metrics.csv"), e);
    }
  }
}
