package dev.hanlin.torch.dist;

import java.util.Map;

/**
 * Who this process is in a data-parallel run: its global rank, its rank on this node, how many
 * processes there are in all and on this node, and where rank 0's rendezvous store listens. Read
 * from torchrun's variables ({@code RANK}, {@code LOCAL_RANK}, {@code WORLD_SIZE}, {@code
 * LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}), which {@code bin/launch} also sets,
 * or else from SLURM's ({@code SLURM_PROCID}, {@code SLURM_NTASKS}, {@code SLURM_LOCALID}, {@code
 * SLURM_NTASKS_PER_NODE}, the first host of {@code SLURM_JOB_NODELIST}); with neither, a single
 * process.
 */
public record Dist(
    int rank, int localRank, int worldSize, int localWorldSize, String masterAddr, int masterPort) {
  public static final int DEFAULT_PORT = 29500;

  /** One process, no peers. */
  public static final Dist SINGLE = new Dist(0, 0, 1, 1, "127.0.0.1", DEFAULT_PORT);

  public Dist {
    if (worldSize < 1 || rank < 0 || rank >= worldSize)
      throw new IllegalArgumentException("rank " + rank + " of world size " + worldSize);
    if (localWorldSize < 1 || localRank < 0 || localRank >= localWorldSize)
      throw new IllegalArgumentException(
          "local rank " + localRank + " of local world size " + localWorldSize);
    if (masterPort < 1 || masterPort > 65535)
      throw new IllegalArgumentException("master port " + masterPort + " is not in 1..65535");
    if (masterAddr == null || masterAddr.isBlank())
      throw new IllegalArgumentException("no master address");
  }

  /** The process's identity from its environment. */
  public static Dist fromEnv() {
    return fromEnv(System.getenv());
  }

  /** The identity that {@code env} describes (torchrun's variables first, then SLURM's). */
  public static Dist fromEnv(Map<String, String> env) {
    String addr = env.getOrDefault("MASTER_ADDR", null);
    int port = integer(env, "MASTER_PORT", DEFAULT_PORT);
    if (env.containsKey("RANK") || env.containsKey("WORLD_SIZE")) {
      int world = integer(env, "WORLD_SIZE", 1);
      int local = integer(env, "LOCAL_RANK", 0);
      return new Dist(
          integer(env, "RANK", 0),
          local,
          world,
          integer(env, "LOCAL_WORLD_SIZE", world),
          addr != null ? addr : "127.0.0.1",
          port);
    }
    if (env.containsKey("SLURM_PROCID") && env.containsKey("SLURM_NTASKS")) {
      int world = integer(env, "SLURM_NTASKS", 1);
      int perNode = world;
      String tpn = env.get("SLURM_NTASKS_PER_NODE");
      if (tpn == null) tpn = env.get("SLURM_TASKS_PER_NODE"); // e.g. "4(x2)"
      if (tpn != null) perNode = Integer.parseInt(tpn.replaceAll("[(,].*", "").trim());
      if (addr == null) addr = firstHost(env.getOrDefault("SLURM_JOB_NODELIST", "127.0.0.1"));
      return new Dist(
          integer(env, "SLURM_PROCID", 0),
          integer(env, "SLURM_LOCALID", 0),
          world,
          perNode,
          addr,
          port);
    }
    return SINGLE;
  }

  /** The first host of a SLURM node list: {@code gpu[07-09,12],cpu1} gives {@code gpu07}. */
  static String firstHost(String nodeList) {
    String first = nodeList.split(",(?![^\\[]*\\])")[0].trim();
    int open = first.indexOf('[');
    if (open < 0) return first;
    String range = first.substring(open + 1, first.indexOf(']', open)).split(",")[0];
    return first.substring(0, open) + range.split("-")[0];
  }

  private static int integer(Map<String, String> env, String key, int dflt) {
    String v = env.get(key);
    if (v == null || v.isBlank()) return dflt;
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(key + "=" + v + " is not an integer");
    }
  }

  /** The rank that logs, evaluates for the record and writes checkpoints. */
  public boolean isMain() {
    return rank == 0;
  }

  /** More than one process. */
  public boolean isDistributed() {
    return worldSize > 1;
  }

  @Override
  public String toString() {
    return "rank " + rank + "/" + worldSize + " (local " + localRank + "/" + localWorldSize + ")";
  }
}
