#!/usr/bin/env python3
# Provenance: copied unchanged (below this header) from /work/shared/bench/pytorch_lora_baseline.py,
# the peer baseline named by issue 7; bench/compare.sh runs it next to `lora-pipeline bench`.
"""Peer baseline: LoRA training throughput of plain PyTorch (fp32 or bf16 autocast, CPU) on a Llama-family model.

Needs Debian's python3-torch and an optimised BLAS (apt-get install python3-torch libopenblas0-pthread);
run it with /usr/bin/python3. Example:
  /usr/bin/python3 pytorch_lora_baseline.py make-model --dims 576,4,9,3,1536,8192 --out bench4
  /usr/bin/python3 pytorch_lora_baseline.py bench --model bench4 --batch 4 --seq 256 --rank 8 --threads 1 --blas-threads 2
(on 2 cores, torch intra-op threads 1 + OpenBLAS threads 2 was the fastest PyTorch setting measured here;
 torch threads 2 + OpenBLAS 2 oversubscribes the cores and runs ~2.5x slower)

Sub-commands:
  make-model --arch llama|qwen2 --dims H,L,NH,NKV,FF,V --out DIR [--seed S] [--tied]
      random-init HF checkpoint (config.json + model.safetensors, F32)
  bench --model DIR --batch B --seq T --rank R --targets q,k,v,o,gate,up,down --steps N --threads N [--bf16] [--flush-denormal]
      LoRA training throughput (AdamW, CPU; fp32, or bf16 autocast with --bf16) of plain PyTorch: the peer baseline
"""
import argparse
import json
import math
import os
import struct
import sys
import time

# BLAS threads must be fixed before torch loads OpenBLAS: --blas-threads N sets OPENBLAS_NUM_THREADS.
# On a 2-core machine the fastest PyTorch setting measured was --threads 1 --blas-threads 2.
if "--blas-threads" in sys.argv:
    os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[sys.argv.index("--blas-threads") + 1]

import numpy as np
import torch
import torch.nn.functional as F



def load_safetensors(path):
    """Minimal safetensors reader (F32/F16/BF16) -> dict of torch tensors."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(data[a:b], dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(data[a:b], dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError("unsupported dtype " + dt)
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out

PROJ = {
    "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj",
}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Model:
    def __init__(self, model_dir):
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.cfg = cfg
        self.w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.dim = cfg["hidden_size"]
        self.L = cfg["num_hidden_layers"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads", self.nh)
        self.hd = cfg.get("head_dim") or self.dim // self.nh
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.theta = cfg.get("rope_theta", 10000.0)
        self.lm_head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        self.delta = {}  # "model.layers.N.self_attn.q_proj" -> callable(x) -> extra output

    def lin(self, x, name):
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        if b is not None:
            y = y + b
        f = self.delta.get(name)
        return y + f(x) if f is not None else y

    def rms(self, x, wt):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * wt

    def forward(self, ids):  # ids [B, T] -> logits [B, T, V]
        B, T = ids.shape
        w = self.w
        x = w["model.embed_tokens.weight"][ids]
        inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        fr = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat([fr, fr], -1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((T, T), float("-inf")).triu(1)
        rep = self.nh // self.nkv

        def rot(t):
            h = t.shape[-1] // 2
            return torch.cat([-t[..., h:], t[..., :h]], -1)

        for l in range(self.L):
            p = "model.layers.%d." % l
            h = self.rms(x, w[p + "input_layernorm.weight"])
            q = self.lin(h, p + "self_attn.q_proj").view(B, T, self.nh, self.hd).transpose(1, 2)
            k = self.lin(h, p + "self_attn.k_proj").view(B, T, self.nkv, self.hd).transpose(1, 2)
            v = self.lin(h, p + "self_attn.v_proj").view(B, T, self.nkv, self.hd).transpose(1, 2)
            q = q * cos + rot(q) * sin
            k = k * cos + rot(k) * sin
            k = k.repeat_interleave(rep, 1)
            v = v.repeat_interleave(rep, 1)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, -1)
            o = (att @ v).transpose(1, 2).reshape(B, T, self.nh * self.hd)
            x = x + self.lin(o, p + "self_attn.o_proj")
            h = self.rms(x, w[p + "post_attention_layernorm.weight"])
            x = x + self.lin(F.silu(self.lin(h, p + "mlp.gate_proj")) * self.lin(h, p + "mlp.up_proj"),
                             p + "mlp.down_proj")
        return self.rms(x, w["model.norm.weight"]) @ self.lm_head.T


def make_model(a):
    H, L, NH, NKV, FF, V = [int(x) for x in a.dims.split(",")]
    g = torch.Generator().manual_seed(a.seed)
    r = lambda *s: torch.randn(*s, generator=g) * a.std  # noqa: E731
    hd = H // NH
    t = {"model.embed_tokens.weight": r(V, H) * 20, "model.norm.weight": 1 + r(H)}
    for l in range(L):
        p = "model.layers.%d." % l
        t[p + "input_layernorm.weight"] = 1 + r(H)
        t[p + "post_attention_layernorm.weight"] = 1 + r(H)
        t[p + "self_attn.q_proj.weight"] = r(NH * hd, H)
        t[p + "self_attn.k_proj.weight"] = r(NKV * hd, H)
        t[p + "self_attn.v_proj.weight"] = r(NKV * hd, H)
        t[p + "self_attn.o_proj.weight"] = r(H, NH * hd)
        t[p + "mlp.gate_proj.weight"] = r(FF, H)
        t[p + "mlp.up_proj.weight"] = r(FF, H)
        t[p + "mlp.down_proj.weight"] = r(H, FF)
        if a.arch == "qwen2":
            t[p + "self_attn.q_proj.bias"] = r(NH * hd) * 10
            t[p + "self_attn.k_proj.bias"] = r(NKV * hd) * 10
            t[p + "self_attn.v_proj.bias"] = r(NKV * hd) * 10
    if not a.tied:
        t["lm_head.weight"] = r(V, H)
    cfg = {
        "architectures": ["Qwen2ForCausalLM" if a.arch == "qwen2" else "LlamaForCausalLM"],
        "model_type": a.arch, "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": NH,
        "num_key_value_heads": NKV, "intermediate_size": FF, "vocab_size": V, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0 if a.arch == "qwen2" else 10000.0, "max_position_embeddings": 2048,
        "tie_word_embeddings": bool(a.tied), "hidden_act": "silu", "torch_dtype": "float32",
    }
    os.makedirs(a.out, exist_ok=True)
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    save_safetensors(os.path.join(a.out, "model.safetensors"), t, {"format": "pt"})
    print("wrote", a.out, sum(v.numel() for v in t.values()), "params")


def bench(a):
    torch.set_num_threads(a.threads)
    if a.flush_denormal:  # denormal floats cost ~5x on some Intel CPUs (30-layer random models hit them)
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    m = Model(a.model)
    params = []
    for l in range(m.L):
        for t in a.targets.split(","):
            mod = "model.layers.%d.%s" % (l, PROJ[t])
            W = m.w[mod + ".weight"]
            A = (torch.randn(a.rank, W.shape[1]) / math.sqrt(W.shape[1])).requires_grad_()
            Bm = torch.zeros(W.shape[0], a.rank).requires_grad_()
            params += [A, Bm]
            m.delta[mod] = (lambda A, Bm: lambda x: (x @ A.T @ Bm.T) * 2.0)(A, Bm)
    opt = torch.optim.AdamW(params, lr=1e-4)
    V = m.lm_head.shape[0]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (a.batch, a.seq), generator=g)

    def step():
        if a.bf16:  # the peer's CPU mixed precision: matmuls in bfloat16 under autocast, master weights fp32
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                logits = m.forward(ids)
            logits = logits.float()
        else:
            logits = m.forward(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    toks = a.batch * a.seq * a.steps
    print(json.dumps({"tokens_per_s": toks / dt, "step_s": dt / a.steps, "threads": a.threads,
                      "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                      "bf16": a.bf16, "flush_denormal": a.flush_denormal, "torch": torch.__version__}))


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    mm = sp.add_parser("make-model")
    mm.add_argument("--arch", default="llama", choices=["llama", "qwen2"])
    mm.add_argument("--dims", required=True)
    mm.add_argument("--out", required=True)
    mm.add_argument("--seed", type=int, default=0)
    mm.add_argument("--tied", action="store_true")
    mm.add_argument("--std", type=float, default=0.02)
    bn = sp.add_parser("bench")
    bn.add_argument("--model", required=True)
    bn.add_argument("--batch", type=int, default=8)
    bn.add_argument("--seq", type=int, default=128)
    bn.add_argument("--rank", type=int, default=8)
    bn.add_argument("--targets", default="q,k,v,o,gate,up,down")
    bn.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16), as PyTorch users train on AMX CPUs")
    bn.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True)")
    bn.add_argument("--steps", type=int, default=10)
    bn.add_argument("--warmup", type=int, default=2)
    bn.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    bn.add_argument("--blas-threads", type=int, default=None, help="OpenBLAS threads (set before torch loads)")
    a = p.parse_args()
    {"make-model": make_model, "bench": bench}[a.cmd](a)


if __name__ == "__main__":
    main()
