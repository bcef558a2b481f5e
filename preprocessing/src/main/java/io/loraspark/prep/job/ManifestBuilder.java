package io.loraspark.prep.job;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.read.InputFile;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.shard.ShardSchema;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;

/** Assembles {@code manifest.json} and checks the counts identity against what was written. */
final class ManifestBuilder {

  /** Version of the manifest layout. */
  static final int MANIFEST_VERSION = 1;

  private final ObjectNode json = JsonNodeFactory.instance.objectNode();
  private final Counts counts;

  ManifestBuilder(
      PreprocessConfig config, PreprocessJob.Setup setup, String format, Counts counts) {
    this.counts = counts;
    json.put("manifest_version", MANIFEST_VERSION);
    for (String key : new String[] {"input_rows", "accepted", "rejected", "duplicates"}) {
      json.put(key, 0L); // placeholders, so the counts come first; set by build()
    }
    json.putObject("rejected_by_reason");
    json.put("input", config.input());
    json.put("output", config.output());
    json.put("model", config.modelDir());
    ArrayNode files = json.putArray("input_files");
    for (InputFile f : setup.files()) {
      files
          .addObject()
          .put("file", f.name())
          .put("format", f.format().cliName())
          .put("bytes", f.length());
    }
    json.put("record_format", format);
    json.put("tokenizer_hash", setup.spec().contentHash());
    json.put("tokenizer_files_hash", setup.spec().key());
    json.put("template", setup.template().cliName());
    if (setup.templateHash() != null) {
      json.put("chat_template_hash", setup.templateHash());
    }
    json.put("seed", config.seed());
    json.put("eval_fraction", config.evalFraction());
    json.put("max_seq_len", setup.maxSeqLen());
    json.put("on_too_long", config.onTooLong().cliName());
    json.put("packing", config.pack());
    json.put("shard_count", config.shards());
    ArrayNode columns = json.putArray("shard_columns");
    for (String c : ShardSchema.SCHEMA.fieldNames()) {
      columns.add(c);
    }
    json.put("spark_version", org.apache.spark.package$.MODULE$.SPARK_VERSION());
  }

  void tokenStats(ObjectNode stats) {
    ObjectNode lengths = json.putObject("token_lengths");
    for (String k : new String[] {"p50", "p90", "p99", "max", "mean"}) {
      lengths.set(k, stats.get(k));
    }
    json.set("truncated", stats.get("truncated"));
    json.set("label_tokens", stats.get("label_tokens"));
  }

  void splits(ObjectNode splits) {
    json.set("splits", splits);
  }

  void shardFiles(List<FileStatus> parts, Configuration conf) {
    ArrayNode files = json.putArray("shard_files");
    for (FileStatus f : parts) {
      files
          .addObject()
          .put("file", f.getPath().getName())
          .put("rows", ShardWriter.rows(List.of(f), conf))
          .put("bytes", f.getLen());
    }
  }

  /**
   * Puts the counts (accepted as read back from the shards, rejected as read back from {@code
   * rejected/}) and checks {@code input_rows = accepted + rejected + duplicates}.
   *
   * @throws IllegalStateException if the identity or the agreement with the planned counts fails
   */
  Manifest build(long rejectedOnDisk) {
    long acceptedOnDisk =
        json.path("splits").path(ShardSchema.TRAIN).path("examples").asLong()
            + json.path("splits").path(ShardSchema.EVAL).path("examples").asLong();
    long sum = acceptedOnDisk + rejectedOnDisk + counts.duplicates();
    if (sum != counts.inputRows()
        || acceptedOnDisk != counts.accepted()
        || rejectedOnDisk != counts.rejected()) {
      throw new IllegalStateException(
          String.format(
              "row accounting failed: input_rows %d != accepted %d + rejected %d + duplicates %d"
                  + " (expected accepted %d, rejected %d); no output was committed",
              counts.inputRows(),
              acceptedOnDisk,
              rejectedOnDisk,
              counts.duplicates(),
              counts.accepted(),
              counts.rejected()));
    }
    json.put("input_rows", counts.inputRows());
    json.put("accepted", acceptedOnDisk);
    json.put("rejected", rejectedOnDisk);
    json.put("duplicates", counts.duplicates());
    json.put("blank_lines", counts.blankLines());
    ObjectNode reasons = (ObjectNode) json.get("rejected_by_reason");
    counts.rejectedByReason().forEach(reasons::put);
    return new Manifest(json);
  }

  static String sha256(String text) {
    return HexFormat.of()
        .formatHex(Conversation.sha256().digest(text.getBytes(StandardCharsets.UTF_8)));
  }
}
