package io.loraspark.pipeline.sweep;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.loop.AdapterKey;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.spark.BaseModelCache;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;

/**
 * A sweep's {@code run.json}: what ran (the config's run-wide keys, rungs and rounds), on what
 * (Spark, Java, lora-spark versions), from what ({@link Provenance}), and per adapter its status,
 * its leaderboard settings ({@code settings}) and every resolved setting it trained with ({@code
 * resolved}, the fields of its {@link AdapterKey} plus the run-wide ones).
 */
final class RunRecord {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /**
   * Where a run's inputs came from.
   *
   * @param baseModelSha256 {@link io.loraspark.train.spark.BaseModelCache#contentHash} of the model
   * @param dataFingerprint the hash of the train and eval token rows (the checkpoint keys' data)
   * @param version lora-spark's version, null when running from classes without a jar manifest
   */
  record Provenance(String baseModelSha256, String dataFingerprint, String version) {}

  /** What a finished sweep hands to {@link #write}. */
  record Run(
      String runId,
      SweepConfig config,
      List<SweepRunner.Entry> board,
      List<Map<String, Object>> rounds,
      List<Integer> rungs,
      double seconds,
      Provenance provenance) {}

  /**
   * One trained stage of a staged sweep.
   *
   * @param dir its directory (a sweep run directory with its own run.json)
   * @param parents the previous stage's adapters its adapters trained on
   * @param board its leaderboard, best first
   */
  record StageRun(
      Stage stage, Path dir, List<SweepPlan.Parent> parents, List<SweepRunner.Entry> board) {}

  private RunRecord() {}

  /** Writes {@code runDir/run.json} atomically. */
  static void write(SparkSession spark, Path runDir, Run r) {
    write(runDir, record(spark, r));
  }

  /**
   * Writes a staged sweep's {@code run.json}: the run as {@link #write} has it over every node, its
   * rounds each tagged with their {@code stage}, its provenance's data fingerprint the stages'
   * (comma-joined), and {@code stages}: per stage its name, directory, data, parents ({@code top_k}
   * and the parent ids), adapter count, best adapter, rungs and rounds (from the stage's own
   * run.json).
   */
  static void writeStaged(
      SparkSession spark,
      Path runDir,
      String runId,
      SweepConfig config,
      List<SweepRunner.Entry> board,
      List<StageRun> stages,
      double seconds) {
    List<Map<String, Object>> rounds = new ArrayList<>();
    List<String> fingerprints = new ArrayList<>();
    ArrayNode out = JSON.createArrayNode();
    for (StageRun s : stages) {
      JsonNode own = read(s.dir().resolve("run.json"));
      fingerprints.add(own.path("provenance").path("data_fingerprint").asText());
      for (JsonNode r : own.path("rounds")) {
        Map<String, Object> round = new LinkedHashMap<>();
        round.put("stage", s.stage().name());
        round.putAll(JSON.convertValue(r, new TypeReference<Map<String, Object>>() {}));
        rounds.add(round);
      }
      ObjectNode n = out.addObject();
      n.put("name", s.stage().name());
      n.put("dir", runDir.relativize(s.dir()).toString());
      n.put(
          "data",
          s.stage().sweep().data() == null ? own.path("data").asText() : s.stage().sweep().data());
      n.put("top_k", s.stage().topK());
      n.putPOJO("parents", s.parents().stream().map(SweepPlan.Parent::id).toList());
      n.put("adapters", s.board().size());
      boolean ok = !s.board().isEmpty() && s.board().get(0).status() == AdapterStatus.OK;
      n.put("best", ok ? s.board().get(0).id() : null);
      n.set("rungs", own.path("rungs"));
      n.set("rounds", own.path("rounds"));
    }
    Provenance p =
        new Provenance(
            BaseModelCache.contentHash(Path.of(config.model()).toAbsolutePath().normalize()),
            String.join(",", fingerprints),
            SweepRunner.class.getPackage().getImplementationVersion());
    ObjectNode run = record(spark, new Run(runId, config, board, rounds, List.of(), seconds, p));
    run.set("stages", out);
    write(runDir, run);
  }

  private static void write(Path runDir, ObjectNode run) {
    try {
      AtomicFiles.writeString(runDir.resolve("run.json"), JSON.writeValueAsString(run));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + runDir.resolve("run.json"), e);
    }
  }

  private static JsonNode read(Path file) {
    try {
      return JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  private static ObjectNode record(SparkSession spark, Run r) {
    SweepConfig config = r.config();
    ObjectNode run = JSON.createObjectNode();
    run.put("run_id", r.runId());
    run.put("finished", Instant.now().toString());
    run.put("seconds", r.seconds());
    run.put("config_file", String.valueOf(config.source()));
    run.put("model", config.model());
    run.put("data", config.data());
    run.put("adapters_per_task", config.adaptersPerTask());
    // the setting; auto resolves per executor, each adapter's lora_spark.json has what ran
    run.put("precision", config.precision().key());
    run.putPOJO("pruning", config.pruning());
    run.putPOJO("rungs", r.rungs());
    run.putPOJO("rounds", r.rounds());
    run.put("spark_version", spark.version());
    run.put("spark_master", spark.sparkContext().master());
    run.put("java_version", System.getProperty("java.version"));
    run.put("lora_spark_version", r.provenance().version());
    ObjectNode provenance = run.putObject("provenance");
    provenance.put("base_model_sha256", r.provenance().baseModelSha256());
    provenance.put("data_fingerprint", r.provenance().dataFingerprint());
    provenance.put("lora_spark_version", r.provenance().version());
    ArrayNode adapters = run.putArray("adapters");
    for (SweepRunner.Entry e : r.board()) {
      ObjectNode a = adapters.addObject();
      a.put("adapter_id", e.id());
      a.put("status", e.status().fileName());
      a.putPOJO("settings", e.planned().settings());
      a.set("resolved", resolved(e.planned(), config));
    }
    return run;
  }

  /**
   * Every setting adapter {@code p} trained with: its key's fields (numbers and booleans as JSON
   * numbers and booleans), its replicas and the run-wide settings of {@code config}.
   */
  static ObjectNode resolved(SweepPlan.Planned p, SweepConfig config) {
    ObjectNode out = JSON.createObjectNode();
    AdapterKey.settings(p.spec()).build().fields().forEach((k, v) -> out.set(k, value(v)));
    if (p.spec().parent() != null) { // the key holds the parent's hash; show where it is too
      out.put("parent", p.spec().parent().location());
      out.put("parent_sha256", p.spec().parent().contentHash());
    }
    out.put("replicas", p.replicas());
    out.put("base_quant", config.baseQuant().key());
    out.put("checkpoint_every", config.checkpointEvery());
    out.put("recompute_activations", config.recomputeActivations());
    out.put("precision", config.precision().key());
    return out;
  }

  private static JsonNode value(String text) {
    if (text.equals("true") || text.equals("false")) {
      return JSON.getNodeFactory().booleanNode(Boolean.parseBoolean(text));
    }
    if (text.matches("-?\\d+")) {
      return JSON.getNodeFactory().numberNode(Long.parseLong(text));
    }
    if (text.matches("-?\\d+\\.\\d+([eE]-?\\d+)?")) {
      return JSON.getNodeFactory().numberNode(Double.parseDouble(text));
    }
    return JSON.getNodeFactory().textNode(text);
  }
}
