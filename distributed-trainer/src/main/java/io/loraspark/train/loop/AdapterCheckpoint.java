package io.loraspark.train.loop;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.io.FaultPoints;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.optim.AdamW;
import io.loraspark.train.safetensors.SafetensorsFile;
import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One adapter's resumable training state on disk: {@code <root>/<adapter-id>/step-NNNNNN/} holds
 * the adapter in PEFT format, the AdamW moments ({@value #OPTIMIZER_FILE}) and {@value #STATE_FILE}
 * (step, micro-step count, data position, metrics so far, the {@link AdapterKey} of the
 * configuration and data with its format version, and a SHA-256 of every other file, written last).
 *
 * <p>A checkpoint is built in a hidden temporary directory beside its final place and renamed into
 * place in one atomic move, so a reader sees a whole checkpoint or none. Nothing else is random:
 * data order derives from (seed, epoch) and dropout masks from (seed, micro-step), so the position
 * saved here is the whole random state. Loading verifies the checksums and falls back to the
 * previous checkpoint, with a warning, when the newest one is damaged.
 */
final class AdapterCheckpoint {
  static final String STATE_FILE = "trainer_state.json";
  static final String OPTIMIZER_FILE = "optimizer.safetensors";
  private static final int FORMAT = 1;
  private static final Pattern STEP_DIR = Pattern.compile("step-(\\d{6,})");
  private static final Logger LOG = LoggerFactory.getLogger(AdapterCheckpoint.class);
  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  private AdapterCheckpoint() {}

  /**
   * Where an adapter's training stands at an optimizer-step boundary.
   *
   * @param micro micro-batches consumed so far (selects dropout masks)
   * @param failure empty, or why the adapter stopped
   */
  record Progress(
      int step,
      int micro,
      int dataEpoch,
      int dataCursor,
      int optimizerSteps,
      double evalLoss,
      String failure,
      List<StepMetrics> metrics) {}

  /** A checkpoint read back from disk, with the weights and moments already restored. */
  record Loaded(Path dir, Progress progress) {}

  /**
   * Writes a checkpoint of {@code weights} and {@code optimizer} at {@code progress.step()} and
   * deletes all but the newest {@code keep} checkpoints of this adapter.
   *
   * @return the checkpoint directory
   * @throws UncheckedIOException naming the path if anything cannot be written; an existing
   *     checkpoint is then left as it was
   */
  static Path write(
      Path root,
      String adapterId,
      AdapterKey key,
      Progress progress,
      LoraWeights weights,
      AdamW optimizer,
      int keep) {
    Path adapterDir = root.resolve(adapterId);
    Path target = adapterDir.resolve(String.format("step-%06d", progress.step()));
    Path tmp = adapterDir.resolve("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
    try {
      Files.createDirectories(tmp);
      PeftAdapter.saveState(tmp, weights);
      Map<String, SafetensorsWriter.Tensor> moments = new LinkedHashMap<>();
      for (Map.Entry<String, INDArray> e : optimizer.state().entrySet()) {
        INDArray a = e.getValue().castTo(DataType.FLOAT);
        moments.put(e.getKey(), SafetensorsWriter.Tensor.f32(a.shape(), a.data().asFloat()));
      }
      SafetensorsWriter.write(
          tmp.resolve(OPTIMIZER_FILE),
          moments,
          Map.of("optimizer", "adamw", "step_count", Integer.toString(optimizer.stepCount())));
      FaultPoints.reach(FaultPoints.CHECKPOINT_WRITE);
      ObjectNode state = JSON.createObjectNode();
      state.put("format", FORMAT);
      state.put("adapter_id", adapterId);
      state.put("fingerprint", key.hash());
      state.put("key_format", AdapterKey.VERSION);
      ObjectNode fields = state.putObject("key");
      key.fields().forEach(fields::put);
      state.put("step", progress.step());
      state.put("micro", progress.micro());
      state.put("data_epoch", progress.dataEpoch());
      state.put("data_cursor", progress.dataCursor());
      state.put("optimizer_steps", progress.optimizerSteps());
      putDouble(state, "eval_loss", progress.evalLoss());
      state.put("failure", progress.failure());
      ArrayNode metrics = state.putArray("metrics");
      for (StepMetrics m : progress.metrics()) {
        ObjectNode o = metrics.addObject();
        o.put("step", m.step());
        putDouble(o, "train_loss", m.trainLoss());
        putDouble(o, "eval_loss", m.evalLoss());
        putDouble(o, "lr", m.lr());
        putDouble(o, "grad_norm", m.gradNorm());
        o.put("tokens", m.tokens());
        putDouble(o, "tokens_per_s", m.tokensPerSecond());
      }
      ObjectNode sums = state.putObject("sha256");
      try (Stream<Path> files = Files.list(tmp)) {
        for (Path f : files.sorted().toList()) {
          sums.put(f.getFileName().toString(), AtomicFiles.sha256(f));
        }
      }
      AtomicFiles.writeString(
          tmp.resolve(STATE_FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(state));
      if (Files.exists(target)) {
        AtomicFiles.deleteTree(target);
      }
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
      syncDir(adapterDir);
    } catch (IOException e) {
      deleteQuietly(tmp);
      throw new UncheckedIOException(target + ": cannot write checkpoint: " + e, e);
    } catch (RuntimeException e) {
      deleteQuietly(tmp);
      throw e;
    }
    prune(adapterDir, keep);
    return target;
  }

  /**
   * Restores the newest intact checkpoint of {@code adapterId} under {@code root} into {@code
   * weights} and {@code optimizer}. A checkpoint whose key has another format is reported to {@code
   * notes} in one line: a format-1 key that still matches (the same settings, records unchanged) is
   * resumed; any other is discarded (the adapter's checkpoints are deleted) and the adapter trains
   * from step 0.
   *
   * @param legacy the format-1 hash of this training ({@link AdapterKey#legacyHash})
   * @return empty when there is no checkpoint (or none intact, or none of a usable format)
   * @throws IllegalArgumentException when a checkpoint of this key format was written for another
   *     configuration or other data, naming the directory and the fields that differ
   */
  static Optional<Loaded> restore(
      Path root,
      String adapterId,
      AdapterKey key,
      String legacy,
      LoraWeights weights,
      AdamW optimizer,
      java.util.function.Consumer<String> notes) {
    Path adapterDir = root.resolve(adapterId);
    List<Path> newestFirst = new ArrayList<>(stepDirs(adapterDir));
    java.util.Collections.reverse(newestFirst);
    for (Path dir : newestFirst) {
      JsonNode state;
      try {
        state = verified(dir);
      } catch (IOException | RuntimeException e) {
        LOG.warn("{}: damaged checkpoint skipped ({})", dir, e.getMessage());
        continue;
      }
      if (!usable(dir, state, key, legacy, notes)) {
        discard(adapterDir);
        return Optional.empty();
      }
      DataType dt = weights.modules().iterator().next().a().dataType();
      PeftAdapter.loadInto(dir, weights);
      Map<String, INDArray> moments = new LinkedHashMap<>();
      try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(OPTIMIZER_FILE))) {
        for (String name : f.names()) {
          moments.put(name, Nd4j.create(f.readFloats(name), f.info(name).shape()).castTo(dt));
        }
      }
      optimizer.loadState(moments, state.path("optimizer_steps").asInt());
      List<StepMetrics> metrics = new ArrayList<>();
      for (JsonNode o : state.path("metrics")) {
        metrics.add(
            new StepMetrics(
                adapterId,
                o.path("step").asInt(),
                getDouble(o, "train_loss"),
                getDouble(o, "eval_loss"),
                getDouble(o, "lr"),
                getDouble(o, "grad_norm"),
                o.path("tokens").asLong(),
                getDouble(o, "tokens_per_s")));
      }
      Progress p =
          new Progress(
              state.path("step").asInt(),
              state.path("micro").asInt(),
              state.path("data_epoch").asInt(),
              state.path("data_cursor").asInt(),
              state.path("optimizer_steps").asInt(),
              getDouble(state, "eval_loss"),
              state.path("failure").asText(""),
              metrics);
      return Optional.of(new Loaded(dir, p));
    }
    return Optional.empty();
  }

  /**
   * Whether the checkpoint in {@code dir} (its {@code state}) may be resumed for {@code key}: the
   * same format-2 key, or a format-1 fingerprint equal to {@code legacy} (noted). Another format is
   * noted and not usable; another key of this format is an error naming the fields.
   */
  private static boolean usable(
      Path dir,
      JsonNode state,
      AdapterKey key,
      String legacy,
      java.util.function.Consumer<String> notes) {
    int format = state.path("key_format").asInt(AdapterKey.LEGACY_VERSION);
    String saved = state.path("fingerprint").asText();
    if (format == AdapterKey.VERSION) {
      if (saved.equals(key.hash())) {
        return true;
      }
      Map<String, String> fields = new LinkedHashMap<>();
      state
          .path("key")
          .fields()
          .forEachRemaining(e -> fields.put(e.getKey(), e.getValue().asText()));
      throw new IllegalArgumentException(
          dir
              + ": checkpoint was written for another adapter configuration or other training"
              + " data ("
              + String.join(", ", key.differences(fields))
              + "); delete it or train into another output directory");
    }
    if (format == AdapterKey.LEGACY_VERSION && saved.equals(legacy)) {
      notes.accept(
          dir + ": checkpoint key format 1 (an older lora-spark) matches these settings; resumed");
      return true;
    }
    notes.accept(
        dir
            + ": checkpoint key format "
            + format
            + (format == AdapterKey.LEGACY_VERSION
                ? " (the settings records' text of an older lora-spark) no longer matches: its"
                    + " records or these settings changed"
                : " is not this build's format " + AdapterKey.VERSION)
            + "; checkpoints discarded, adapter retrained from step 0");
    return false;
  }

  private static void discard(Path adapterDir) {
    try {
      AtomicFiles.deleteTree(adapterDir);
    } catch (IOException e) {
      throw new UncheckedIOException(adapterDir + ": cannot delete checkpoints: " + e, e);
    }
  }

  /** The step directories of one adapter, oldest first (temporary directories are ignored). */
  static List<Path> stepDirs(Path adapterDir) {
    if (!Files.isDirectory(adapterDir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.list(adapterDir)) {
      return s.filter(p -> STEP_DIR.matcher(p.getFileName().toString()).matches())
          .sorted(Comparator.comparingLong(AdapterCheckpoint::stepOf))
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(adapterDir + ": cannot list checkpoints: " + e, e);
    }
  }

  private static long stepOf(Path dir) {
    Matcher m = STEP_DIR.matcher(dir.getFileName().toString());
    return m.matches() ? Long.parseLong(m.group(1)) : -1;
  }

  /** Parses the state file and checks every listed file's SHA-256. */
  private static JsonNode verified(Path dir) throws IOException {
    JsonNode state = JSON.readTree(dir.resolve(STATE_FILE).toFile());
    if (state.path("format").asInt() != FORMAT) {
      throw new IllegalStateException("unsupported checkpoint format " + state.path("format"));
    }
    JsonNode sums = state.path("sha256");
    for (String required :
        List.of(OPTIMIZER_FILE, PeftAdapter.WEIGHTS_FILE, PeftAdapter.CONFIG_FILE)) {
      if (!sums.has(required)) {
        throw new IllegalStateException(STATE_FILE + " lists no checksum for " + required);
      }
    }
    for (Map.Entry<String, JsonNode> e : sums.properties()) {
      String actual = AtomicFiles.sha256(dir.resolve(e.getKey()));
      if (!actual.equals(e.getValue().asText())) {
        throw new IllegalStateException(e.getKey() + " fails its SHA-256 check");
      }
    }
    return state;
  }

  private static void prune(Path adapterDir, int keep) {
    List<Path> dirs = stepDirs(adapterDir);
    for (int i = 0; i < dirs.size() - Math.max(1, keep); i++) {
      try {
        AtomicFiles.deleteTree(dirs.get(i));
      } catch (IOException e) {
        LOG.warn("{}: cannot delete old checkpoint ({})", dirs.get(i), e.toString());
      }
    }
  }

  private static void syncDir(Path dir) throws IOException {
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    }
  }

  private static void deleteQuietly(Path dir) {
    try {
      AtomicFiles.deleteTree(dir);
    } catch (IOException ignored) {
      // the temporary directory is hidden and ignored by readers
    }
  }

  private static void putDouble(ObjectNode o, String key, double v) {
    if (Double.isFinite(v)) {
      o.put(key, v);
    } else {
      o.put(key, Double.toString(v));
    }
  }

  private static double getDouble(JsonNode o, String key) {
    JsonNode v = o.path(key);
    return v.isNumber() ? v.asDouble() : Double.parseDouble(v.asText("NaN"));
  }
}
