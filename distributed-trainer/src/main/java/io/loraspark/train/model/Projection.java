package io.loraspark.train.model;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/** The seven linear projections of a Llama-family decoder layer that adapters can target. */
public enum Projection {
  Q("q", "self_attn.q_proj"),
  K("k", "self_attn.k_proj"),
  V("v", "self_attn.v_proj"),
  O("o", "self_attn.o_proj"),
  GATE("gate", "mlp.gate_proj"),
  UP("up", "mlp.up_proj"),
  DOWN("down", "mlp.down_proj");

  private final String shortName;
  private final String modulePath;

  Projection(String shortName, String modulePath) {
    this.shortName = shortName;
    this.modulePath = modulePath;
  }

  /** The name users write in {@code --targets}: q, k, v, o, gate, up, down. */
  public String shortName() {
    return shortName;
  }

  /**
   * The module path inside a layer, as in Hugging Face key names, e.g. {@code self_attn.q_proj}.
   */
  public String modulePath() {
    return modulePath;
  }

  /**
   * The Hugging Face module name for layer {@code layer}, e.g. {@code model.layers.0.mlp.up_proj}.
   */
  public String hfModule(int layer) {
    return "model.layers." + layer + "." + modulePath;
  }

  /** Input width of this projection for {@code config}. */
  public int inFeatures(ModelConfig config) {
    return switch (this) {
      case Q, K, V, GATE, UP -> config.hiddenSize();
      case O -> config.qDim();
      case DOWN -> config.intermediateSize();
    };
  }

  /** Output width of this projection for {@code config}. */
  public int outFeatures(ModelConfig config) {
    return switch (this) {
      case Q -> config.qDim();
      case K, V -> config.kvDim();
      case O, DOWN -> config.hiddenSize();
      case GATE, UP -> config.intermediateSize();
    };
  }

  /**
   * Parses a target name: the short name ({@code q}) or the PEFT module name ({@code q_proj}).
   *
   * @throws IllegalArgumentException naming the valid targets
   */
  public static Projection parse(String name) {
    String n = name.trim().toLowerCase(Locale.ROOT);
    for (Projection p : values()) {
      if (p.shortName.equals(n) || (p.shortName + "_proj").equals(n)) {
        return p;
      }
    }
    throw new IllegalArgumentException(
        "unknown target '" + name + "'; valid targets: " + Arrays.toString(shortNames()));
  }

  /** Parses a comma-separated target list such as {@code q,v} into projections in layer order. */
  public static List<Projection> parseList(String csv) {
    List<Projection> out =
        Arrays.stream(csv.split(",")).filter(s -> !s.isBlank()).map(Projection::parse).toList();
    if (out.isEmpty()) {
      throw new IllegalArgumentException(
          "targets must name at least one of " + Arrays.toString(shortNames()));
    }
    return out.stream().distinct().sorted().toList();
  }

  private static String[] shortNames() {
    return Arrays.stream(values()).map(Projection::shortName).toArray(String[]::new);
  }
}
