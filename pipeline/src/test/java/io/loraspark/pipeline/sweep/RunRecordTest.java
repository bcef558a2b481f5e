package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.loop.AdapterKey;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class RunRecordTest {
  @Test
  void resolvedHoldsEverySettingTyped(@TempDir Path dir) throws IOException {
    Path yaml = dir.resolve("s.yaml");
    Files.writeString(
        yaml,
        """
        model: models/stories260K
        data: runs/prep
        checkpoint_every: 7
        base_quant: int8
        recompute_activations: true
        defaults: {rank: 4, lr: 1.0e-3, rslora: true, steps: 30}
        """);
    SweepConfig c = SweepConfig.read(yaml);
    SweepPlan.Planned p = SweepPlan.expand(c).get(0);
    ObjectNode r = RunRecord.resolved(p, c);
    List<String> names = new ArrayList<>();
    r.fieldNames().forEachRemaining(names::add);
    List<String> expected =
        new ArrayList<>(AdapterKey.settings(p.spec()).build().fields().keySet());
    expected.addAll(
        List.of(
            "replicas", "base_quant", "checkpoint_every", "recompute_activations", "precision"));
    assertThat(names).containsExactlyElementsOf(expected);
    assertThat(r.get("rank").isIntegralNumber()).isTrue();
    assertThat(r.get("rank").asInt()).isEqualTo(4);
    assertThat(r.get("lr").asDouble()).isEqualTo(1e-3);
    assertThat(r.get("rslora").booleanValue()).isTrue();
    assertThat(r.get("warmup_steps").asInt()).as("derived: steps / 10").isEqualTo(3);
    assertThat(r.get("schedule").asText()).isEqualTo("cosine");
    assertThat(r.get("base_quant").asText()).isEqualTo("int8");
    assertThat(r.get("checkpoint_every").asInt()).isEqualTo(7);
    assertThat(r.get("recompute_activations").booleanValue()).isTrue();
    assertThat(r.get("seed").asLong()).as("derived per adapter").isNotEqualTo(42L);
    assertThat(r.has("parent")).as("a root has no parent").isFalse();
  }

  /** A sweep's {@code parent}: hashed when planned, shown with its hash, a bad one refused. */
  @Test
  void aParentIsPlannedWithItsContentHash(@TempDir Path dir) throws IOException {
    Path parent = dir.resolve("parent");
    PeftAdapter.save(
        parent,
        LoraWeights.init(
            ModelConfig.load(Path.of("../models/stories260K")),
            new LoraConfig(2, 4, 0, List.of(Projection.Q), false),
            1,
            DataType.FLOAT),
        null);
    Path yaml = dir.resolve("s.yaml");
    Files.writeString(
        yaml,
        "model: models/stories260K\ndata: runs/prep\ndefaults: {rank: 2, parent: "
            + parent
            + "}\n");
    SweepConfig c = SweepConfig.read(yaml);
    SweepPlan.Planned p = SweepPlan.expand(c).get(0);
    assertThat(p.spec().parent()).isEqualTo(AdapterParent.of(parent.toString()));
    ObjectNode r = RunRecord.resolved(p, c);
    assertThat(r.get("parent").asText()).isEqualTo(parent.toAbsolutePath().toString());
    assertThat(r.get("parent_sha256").asText()).isEqualTo(p.spec().parent().contentHash());

    Files.writeString(
        yaml, "model: models/stories260K\ndata: runs/prep\ndefaults: {parent: " + dir + "}\n");
    SweepConfig bad = SweepConfig.read(yaml);
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> SweepPlan.expand(bad))
        .hasMessageContaining("s.yaml: defaults: parent " + dir)
        .hasMessageContaining("has no adapter_config.json")
        .hasMessageNotContaining("\n");
  }
}
