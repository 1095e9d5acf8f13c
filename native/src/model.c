// model_type → architecture, and the small helpers every architecture shares (model.h).
#include "model.h"
#include "gpt_neox.h"
#include "llama.h"
#include "mamba.h"
#include "olmo.h"
#include "opt.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Model *(*Create)(const ModelConfig *cfg, char *err, int errlen);

static const struct {
  const char *type;
  Create create;
} ARCHS[] = {
    {"llama", llama_create},
    {"gpt_neox", gpt_neox_create},
    {"olmo", olmo_create},
    {"opt", opt_create},
    {"mamba", mamba_create},
};
enum { N_ARCHS = sizeof ARCHS / sizeof *ARCHS };

Model *model_create(const char *type, const ModelConfig *cfg, char *err, int errlen) {
  for (int i = 0; i < N_ARCHS; i++)
    if (!strcmp(ARCHS[i].type, type)) return ARCHS[i].create(cfg, err, errlen);
  snprintf(err, errlen, "model_type '%s' has no native engine (native: %s)", type, model_types());
  return NULL;
}

const char *model_types(void) {
  static char list[256];
  if (!list[0])
    for (int i = 0; i < N_ARCHS; i++) {
      if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
      strncat(list, ARCHS[i].type, sizeof list - strlen(list) - 1);
    }
  return list;
}

void model_free(Model *m) {
  if (!m) return;
  for (int i = 0; i < m->n_slots; i++) free((void *)m->slots[i].name);
  free(m->slots);
  m->slots = NULL;
  m->n_slots = 0;
  m->ops->destroy(m);
}

static int add_slot(Model *m, WeightSlot slot) {
  if (m->n_slots == m->cap_slots) {
    const int cap = m->cap_slots ? 2 * m->cap_slots : 64;
    WeightSlot *s = (WeightSlot *)realloc(m->slots, sizeof(WeightSlot) * cap);
    if (!s) return 0;
    m->slots = s;
    m->cap_slots = cap;
  }
  char *copy = (char *)malloc(strlen(slot.name) + 1);
  if (!copy) return 0;
  strcpy(copy, slot.name);
  slot.name = copy;
  m->slots[m->n_slots++] = slot;
  return 1;
}

int model_slot(Model *m, const char *name, float *ptr, long n) { return ptr && add_slot(m, (WeightSlot){name, ptr, NULL, n}); }

int model_mat(Model *m, const char *name, Mat *mat, long n) { return add_slot(m, (WeightSlot){name, NULL, mat, n}); }

void mat_free(Mat W, Mat keep) {
  if (W.p != keep.p) free(W.p);
}

float *model_zalloc(long n) { return (float *)calloc(n > 0 ? n : 1, sizeof(float)); }

static const double *lookup(const ModelConfig *c, const char *key) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->keys[i], key)) return &c->vals[i];
  return NULL;
}

int config_int(const ModelConfig *c, const char *key, long lo, long hi, int *out, char *err, int errlen) {
  const double *v = lookup(c, key);
  if (!v) {
    snprintf(err, errlen, "%s must be a number", key);
    return 0;
  }
  if (!(*v == floor(*v)) || *v < lo || *v > hi) {
    snprintf(err, errlen, "%s must be an integer in [%ld, %ld], got %g", key, lo, hi, *v);
    return 0;
  }
  *out = (int)*v;
  return 1;
}

int config_float(const ModelConfig *c, const char *key, float *out, char *err, int errlen) {
  const double *v = lookup(c, key);
  if (!v || !isfinite(*v)) {
    snprintf(err, errlen, "%s must be a finite number", key);
    return 0;
  }
  *out = (float)*v;
  return 1;
}

int config_bool(const ModelConfig *c, const char *key, int def) {
  const double *v = lookup(c, key);
  return v ? *v != 0 : def;
}
