package io.loraspark.pipeline.report;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The tree of a staged sweep's adapters, read from the leaderboard's {@code parent} and {@code
 * depth} columns, for both renderers: each node with its eval loss and its gain over its parent.
 *
 * <p>A node's gain is {@code base_eval_loss − eval_loss}: its trainer scores its own eval data
 * before the first step on the frozen model it trains on (the base with its parent chain applied),
 * so for a child this is the loss it removes from its parent on the child's data, and for a root
 * what it removes from the base model.
 */
final class AdapterTree {
  /** One adapter and the adapters trained on top of it, in leaderboard order. */
  record Node(RunData.Row row, List<Node> children) {
    /** eval loss, NaN when it has none. */
    double evalLoss() {
      return row.number("eval_loss");
    }

    /** Loss removed from what it trained on (positive is better), NaN when unknown. */
    double gain() {
      return row.number("base_eval_loss") - row.number("eval_loss");
    }

    /** The node's line: id, eval loss, gain over its parent (or the base), status. */
    String label() {
      String over = row.text("parent") == null ? "base" : "parent";
      return row.id()
          + " · eval loss "
          + (Double.isFinite(evalLoss()) ? Tables.fixed(evalLoss(), 4) : "–")
          + (Double.isFinite(gain())
              ? String.format(Locale.ROOT, " · gain %+.4f over %s", gain(), over)
              : "")
          + " · "
          + row.text("status");
    }
  }

  /** What the tree shows, for both renderers. */
  static final String NOTE =
      "Each stage's adapters train on top of a previous stage's adapter (their parent, frozen)."
          + " Gain is the eval loss an adapter removes from what it trained on, both on its own"
          + " eval data: the base with its parent chain (a root: the base model).";

  private AdapterTree() {}

  /** Whether the run is a tree: some adapter has a parent. */
  static boolean isTree(RunData run) {
    return run.board().stream().anyMatch(r -> r.text("parent") != null);
  }

  /**
   * The roots (adapters on the bare base, or on a parent outside the run), each with its
   * descendants; empty when the run is not a tree.
   */
  static List<Node> roots(RunData run) {
    if (!isTree(run)) {
      return List.of();
    }
    Map<String, Node> byId = new LinkedHashMap<>();
    for (RunData.Row r : run.board()) {
      byId.put(r.id(), new Node(r, new ArrayList<>()));
    }
    List<Node> roots = new ArrayList<>();
    for (Node n : byId.values()) {
      Node parent = n.row().text("parent") == null ? null : byId.get(n.row().text("parent"));
      (parent == null ? roots : parent.children()).add(n);
    }
    roots.sort(java.util.Comparator.comparingInt(n -> (int) n.row().number("depth")));
    return roots;
  }
}
