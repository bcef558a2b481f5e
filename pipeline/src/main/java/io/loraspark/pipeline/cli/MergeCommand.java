package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.lora.LoraMerge;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.safetensors.SafetensorsCheckpoint;
import io.loraspark.train.safetensors.SafetensorsFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code merge}: folds a PEFT LoRA adapter into its base model ({@code W + s·B·A}) and writes a
 * plain Hugging Face checkpoint (F32 {@code model.safetensors}, {@code config.json} and the
 * tokenizer files) that loads without adapter support.
 *
 * <p>The checkpoint is assembled in a hidden sibling directory and renamed to OUTPUT only when
 * complete, so OUTPUT never holds half a model. An existing non-empty OUTPUT is replaced only with
 * {@code --force}; OUTPUT may never be, or contain, the base model or the adapter directory.
 */
@Command(
    name = "merge",
    mixinStandardHelpOptions = true,
    description =
        "Writes MODEL + s·B·A of ADAPTER as a new Hugging Face checkpoint at OUTPUT; prints"
            + " {\"output\", \"merged_modules\", \"tensors\"} as one JSON line.")
final class MergeCommand implements Callable<Integer> {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "base Hugging Face checkpoint")
  Path model;

  @Option(names = "--adapter", required = true, description = "PEFT LoRA adapter directory")
  Path adapter;

  @Option(names = "--output", required = true, description = "checkpoint directory to write")
  Path output;

  @Option(names = "--force", description = "replace a non-empty OUTPUT")
  boolean force;

  @Override
  public Integer call() {
    Path out = output.toAbsolutePath().normalize();
    checkOutput(out);
    ModelWeights base = CheckpointLoader.load(model);
    LoraWeights lora = AdapterOption.load(adapter, model, base);
    ModelWeights merged = LoraMerge.merged(base, lora);
    AtomicDirectory.create(out.getParent());
    Path staging = out.resolveSibling("." + out.getFileName() + ".merge-" + UUID.randomUUID());
    try {
      LoraMerge.writeCheckpoint(merged, model, staging);
      AtomicDirectory.replace(staging, out);
    } catch (RuntimeException e) {
      try {
        AtomicDirectory.deleteRecursively(staging);
      } catch (UncheckedIOException cleanup) {
        e.addSuppressed(cleanup);
      }
      throw e;
    }
    int tensors;
    try (SafetensorsFile f = SafetensorsFile.open(out.resolve(SafetensorsCheckpoint.SINGLE_FILE))) {
      tensors = f.names().size();
    }
    ObjectNode json = ScoreInput.STRICT.createObjectNode();
    json.put("output", out.toString());
    json.put("base_model", model.toAbsolutePath().normalize().toString());
    json.put("adapter", adapter.toAbsolutePath().normalize().toString());
    json.put("merged_modules", lora.modules().size());
    json.put("scaling", lora.config().scaling());
    json.put("tensors", tensors);
    spec.commandLine().getOut().println(json);
    return Main.OK;
  }

  /**
   * Refuses an OUTPUT that is a file, that is or holds the model or the adapter (even with
   * --force), or that is non-empty without --force.
   */
  private void checkOutput(Path out) {
    if (!Files.exists(out)) {
      return;
    }
    if (!Files.isDirectory(out)) {
      throw new IllegalArgumentException(
          "--output " + output + " is a file; pass a directory to write the merged model into");
    }
    for (Path input : new Path[] {model, adapter}) {
      if (AtomicDirectory.isWithin(input, out)) {
        throw new IllegalArgumentException(
            "--output "
                + output
                + " is or contains the input "
                + input
                + ", which replacing it would destroy; write the merge to another directory");
      }
    }
    if (!force && !AtomicDirectory.isEmpty(out)) {
      throw new IllegalArgumentException(
          "--output "
              + output
              + " exists and is not empty; pass --force to replace it or choose a new directory");
    }
  }

  /** Directory operations for the staged write; I/O failures name the path. */
  static final class AtomicDirectory {
    private AtomicDirectory() {}

    static void create(Path dir) {
      try {
        Files.createDirectories(dir);
      } catch (IOException e) {
        throw new UncheckedIOException(dir + ": cannot create directory: " + e, e);
      }
    }

    /** Whether {@code p} exists and is {@code dir} or lies under it (symbolic links resolved). */
    static boolean isWithin(Path p, Path dir) {
      try {
        return Files.exists(p) && p.toRealPath().startsWith(dir.toRealPath());
      } catch (IOException e) {
        throw new UncheckedIOException(p + " / " + dir + ": cannot resolve: " + e, e);
      }
    }

    static boolean isEmpty(Path dir) {
      try (Stream<Path> s = Files.list(dir)) {
        return s.findAny().isEmpty();
      } catch (IOException e) {
        throw new UncheckedIOException(dir + ": cannot list: " + e, e);
      }
    }

    /**
     * Renames the complete {@code staging} directory to {@code target}. An existing {@code target}
     * is first renamed aside and deleted after the swap, so a reader sees the old or the new
     * checkpoint, never a mix (rename(2) cannot replace a non-empty directory in one step).
     */
    static void replace(Path staging, Path target) {
      Path old = null;
      try {
        if (Files.exists(target)) {
          old = target.resolveSibling("." + target.getFileName() + ".old-" + UUID.randomUUID());
          Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (IOException e) {
        UncheckedIOException u =
            new UncheckedIOException(target + ": cannot move the merged checkpoint in: " + e, e);
        restore(old, target, u);
        throw u;
      }
      if (old != null) {
        deleteRecursively(old);
      }
    }

    /** Puts the set-aside {@code old} back at {@code target} after a failed swap. */
    private static void restore(Path old, Path target, UncheckedIOException failure) {
      if (old == null || Files.exists(target)) {
        return;
      }
      try {
        Files.move(old, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (IOException e) {
        failure.addSuppressed(e);
      }
    }

    /** Deletes {@code dir} and everything under it, if it exists. */
    static void deleteRecursively(Path dir) {
      if (!Files.exists(dir)) {
        return;
      }
      try (Stream<Path> s = Files.walk(dir)) {
        for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      } catch (IOException e) {
        throw new UncheckedIOException(dir + ": cannot delete: " + e, e);
      }
    }
  }
}
