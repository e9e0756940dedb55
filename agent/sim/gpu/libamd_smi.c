/*
 * tuner's simulated libamd_smi.so.
 *
 * The real, unmodified `amdsmi` Python package loads this library through ROCM_PATH. It
 * answers the functions a GPU health gate uses from a per-node state file (format:
 * docs/sim-gpu-state.md), re-read at every amdsmi_init(). Every other symbol the wrapper
 * binds is a generated weak stub (amdsmi_sim_stubs.c) returning NOT_SUPPORTED; the strong
 * definitions below override those stubs. Struct layouts and prototypes come from the
 * generated amdsmi_sim_gen.h, itself read off the installed wrapper, so a layout or
 * signature mismatch is a compile error.
 *
 * State file: $TUNER_SIM_GPU_STATE if set, else <dir of this .so>/../share/tuner-sim/gpu-state
 * (that is <ROCM_PATH>/share/tuner-sim/gpu-state).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amdsmi_sim_gen.h"

#define SIM_API __attribute__((visibility("default")))
#define SIM_MAX_GPUS 64
#define SIM_MAX_BAD_PAGES 1024
#define SIM_MAX_PROCS 64
#define SIM_MAX_CPER 64
#define SIM_MAX_FW 80
#define SIM_NUM_BLOCKS 64
#define SIM_TEMP_TYPES 8
#define SIM_TEMP_METRICS 15
#define SIM_MAX_LINKS 8
#define SIM_CLK_TYPES 10 /* AMDSMI_CLK_TYPE_SYS (GFX) .. DCLK1 */
#define SIM_NA16 0xFFFFu  /* what amdsmi's Python shows as "N/A" (activity, power) */
#define SIM_STR 256
#define SIM_ERR_LEN 1024

typedef struct {
    uint64_t address;
    uint64_t size;
    uint32_t status;
} sim_bad_page_t;

typedef struct {
    uint32_t pid;
    char name[SIM_STR];
    uint64_t mem;
    uint32_t cu_occupancy;
} sim_proc_t;

typedef struct {
    uint32_t severity;
    unsigned year, month, day, hours, minutes, seconds;
    uint64_t notify;
    char record_id[SIM_STR];
} sim_cper_t;

typedef struct {
    int defined;
    int enumerated;
    uint64_t domain;
    uint32_t bus, dev, fn;
    char uuid[SIM_STR];
    uint32_t drm_render, drm_card, hsa_id, hip_id;
    char hip_uuid[SIM_STR];
    uint64_t kfd_id;
    uint32_t kfd_node_id, current_partition_id;
    char market_name[SIM_STR];
    uint32_t vendor_id;
    char vendor_name[SIM_STR];
    uint32_t subvendor_id;
    uint64_t device_id;
    uint32_t rev_id;
    char asic_serial[SIM_STR];
    uint32_t oam_id, num_compute_units;
    uint64_t gfx_version;
    uint32_t subsystem_id;
    char model_number[SIM_STR], product_serial[SIM_STR], fru_id[SIM_STR];
    char product_name[SIM_STR], manufacturer_name[SIM_STR];
    uint64_t ecc[SIM_NUM_BLOCKS][3];
    uint32_t ras_state[SIM_NUM_BLOCKS];
    uint32_t ras_eeprom_version, ras_schema;
    uint32_t n_bad_pages;
    sim_bad_page_t bad_pages[SIM_MAX_BAD_PAGES];
    uint32_t bad_page_threshold;
    uint32_t pcie_max_width, pcie_max_speed, pcie_version, pcie_max_version, pcie_slot_type;
    uint32_t pcie_width, pcie_speed, pcie_bandwidth, pcie_other_end_recovery;
    uint64_t pcie_replay, pcie_l0_recovery, pcie_replay_rollover, pcie_nak_sent, pcie_nak_received;
    uint32_t xgmi_n_links, xgmi_link[SIM_MAX_LINKS], xgmi_error, xgmi_lanes, xgmi_index;
    int xgmi_error_inval; /* the sysfs xgmi_error read fails with EINVAL (DF 4.x: MI300, MI355) */
    uint64_t vram_total, vram_used;     /* bytes */
    uint64_t power_cap, power_cap_default, power_cap_min, power_cap_max; /* microwatts */
    uint64_t throttle_status;           /* gpu_metrics throttle_status bits */
    uint64_t xgmi_hive_id, xgmi_node_id;
    int64_t temp[SIM_TEMP_TYPES][SIM_TEMP_METRICS];
    uint8_t temp_set[SIM_TEMP_TYPES][SIM_TEMP_METRICS];
    uint32_t n_fw;
    uint32_t fw_id[SIM_MAX_FW];
    uint64_t fw_version[SIM_MAX_FW];
    char vbios_name[SIM_STR], vbios_build_date[SIM_STR], vbios_part_number[SIM_STR];
    char vbios_version[SIM_STR];
    char driver_name[SIM_STR], driver_version[SIM_STR], driver_date[SIM_STR];
    uint32_t n_procs;
    sim_proc_t procs[SIM_MAX_PROCS];
    char compute_partition[SIM_STR], memory_partition[SIM_STR];
    int32_t numa_node;
    /* idle-state signals: activity in %, clocks in MHz, socket power in W (SIM_NA16 = N/A) */
    uint32_t act_gfx, act_umc, act_mm;
    uint32_t clk_cur[SIM_CLK_TYPES], clk_min[SIM_CLK_TYPES], clk_max[SIM_CLK_TYPES];
    uint8_t clk_set[SIM_CLK_TYPES];
    uint32_t power_current, power_average;
    uint32_t perf_level;
    uint32_t xgmi_bit_rate[SIM_MAX_LINKS], xgmi_width[SIM_MAX_LINKS]; /* Gb/s, lanes per link */
    char vram_vendor[SIM_STR];
    uint32_t num_partition; /* gpu_metrics num_partition: logical devices of the physical GPU */
    uint32_t n_cper;
    sim_cper_t cper[SIM_MAX_CPER];
    uint8_t fail_set[SIM_NUM_SYMBOLS];
    uint32_t fail[SIM_NUM_SYMBOLS];
} sim_gpu_t;

typedef struct {
    int gpu;
} sim_socket_t;

static sim_gpu_t g_gpus[SIM_MAX_GPUS];
static int g_num_gpus;
static sim_socket_t g_sockets[SIM_MAX_GPUS];
static int g_num_sockets;
static uint32_t g_node_index;
static uint32_t g_hang_ms; /* [node] hang_ms: amdsmi_init blocks this long */
static int g_privileged = -1; /* [node] privileged: -1 auto (geteuid() == 0), 0 no, 1 yes */
static char g_lib_version[SIM_STR]; /* [node] lib_version: empty = the amdsmi package's */
static uint8_t g_node_fail_set[SIM_NUM_SYMBOLS];
static uint32_t g_node_fail[SIM_NUM_SYMBOLS];
static int g_init;
static char g_state_path[4096];
static char g_last_error[SIM_ERR_LEN];

/* ------------------------------------------------------------------ small helpers */

static void sim_copy(char *dst, size_t size, const char *src) {
    if (size == 0) return;
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int sim_symbol_index(const char *name) {
    int lo = 0, hi = SIM_NUM_SYMBOLS - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(name, sim_symbol_names[mid]);
        if (c == 0) return mid;
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return -1;
}

/* Look NAME up in TABLE, case-insensitively, with or without PREFIX. */
static int sim_lookup(const sim_name_value_t *table, const char *prefix, const char *name,
                      uint64_t *out) {
    size_t plen = strlen(prefix);
    for (const sim_name_value_t *r = table; r->name; r++) {
        if (strcasecmp(r->name, name) == 0 ||
            (strncasecmp(r->name, prefix, plen) == 0 && strcasecmp(r->name + plen, name) == 0)) {
            *out = r->value;
            return 1;
        }
    }
    return 0;
}

static int sim_parse_u64(const char *s, uint64_t *out) {
    if (!*s || *s == '-') return 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int sim_parse_i64(const char *s, int64_t *out) {
    if (!*s) return 0;
    char *end;
    long long v = strtoll(s, &end, 0);
    if (*end) return 0;
    *out = (int64_t)v;
    return 1;
}

static int sim_parse_bool(const char *s, int *out) {
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
        !strcmp(s, "1")) {
        *out = 1;
        return 1;
    }
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
        !strcmp(s, "0")) {
        *out = 0;
        return 1;
    }
    return 0;
}

static int sim_parse_status(const char *s, uint32_t *out) {
    uint64_t v;
    if (sim_parse_u64(s, &v) && v <= 0xFFFFFFFFu) {
        *out = (uint32_t)v;
        return 1;
    }
    if (sim_lookup(sim_status_names, "AMDSMI_STATUS_", s, &v)) {
        *out = (uint32_t)v;
        return 1;
    }
    return 0;
}

static char *sim_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Split "a, b, c" in place into at most MAX trimmed fields; returns the count. */
static int sim_split(char *s, char sep, char **fields, int max) {
    int n = 0;
    char *p = s;
    while (n < max) {
        char *q = strchr(p, sep);
        if (q) *q = '\0';
        fields[n++] = sim_trim(p);
        if (!q) break;
        p = q + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ defaults */

static const uint32_t k_default_bus[8] = {0x05, 0x15, 0x65, 0x75, 0x85, 0x95, 0xe5, 0xf5};

typedef struct {
    const char *name;
    uint64_t version;
} sim_default_fw_t;

/* Must match agent/sim/gpu/state.py DEFAULT_FIRMWARE. */
static const sim_default_fw_t k_default_fw[] = {
    {"CP_MEC1", 43},           {"CP_MEC2", 43},          {"RLC", 98},
    {"SDMA0", 19},             {"SDMA1", 19},            {"VCN", 0x0111000E},
    {"PSP_SOSDRV", 0x00370036}, {"TA_RAS", 0x1B00013E},  {"TA_XGMI", 0x20000014},
    {"PM", 0x00550E00},
};

static void sim_set_temp(sim_gpu_t *g, int type, int64_t cur, int64_t max, int64_t crit,
                         int64_t emerg) {
    g->temp[type][AMDSMI_TEMP_CURRENT] = cur;
    g->temp[type][AMDSMI_TEMP_MAX] = max;
    g->temp[type][AMDSMI_TEMP_CRITICAL] = crit;
    g->temp[type][AMDSMI_TEMP_EMERGENCY] = emerg;
    g->temp_set[type][AMDSMI_TEMP_CURRENT] = 1;
    g->temp_set[type][AMDSMI_TEMP_MAX] = 1;
    g->temp_set[type][AMDSMI_TEMP_CRITICAL] = 1;
    g->temp_set[type][AMDSMI_TEMP_EMERGENCY] = 1;
}

/* Healthy MI355X defaults for GPU I of node NODE; must match state.py. */
static void sim_set_clk(sim_gpu_t *g, int type, uint32_t cur, uint32_t min, uint32_t max) {
    g->clk_cur[type] = cur;
    g->clk_min[type] = min;
    g->clk_max[type] = max;
    g->clk_set[type] = 1;
}

static void sim_gpu_defaults(sim_gpu_t *g, int i, uint32_t node) {
    memset(g, 0, sizeof(*g));
    uint64_t serial = (uint64_t)0x5A11000000000000ULL + (uint64_t)node * 0x1000u + (uint64_t)i;
    g->defined = 1;
    g->enumerated = 1;
    g->domain = (uint64_t)(i / 8);
    g->bus = k_default_bus[i % 8];
    snprintf(g->uuid, sizeof g->uuid, "%02xff75a3-0000-1000-8000-%012" PRIx64, i & 0xff,
             (uint64_t)(serial & 0xFFFFFFFFFFFFULL));
    g->drm_card = (uint32_t)i + 1;
    g->drm_render = 128 + (uint32_t)i;
    g->hsa_id = (uint32_t)i + 2;
    g->hip_id = (uint32_t)i;
    snprintf(g->hip_uuid, sizeof g->hip_uuid, "GPU-%016" PRIx64, serial);
    g->kfd_id = 0x6000 + (uint64_t)i;
    g->kfd_node_id = (uint32_t)i + 2;
    sim_copy(g->market_name, SIM_STR, "AMD Instinct MI355X");
    g->vendor_id = 0x1002;
    sim_copy(g->vendor_name, SIM_STR, "Advanced Micro Devices Inc. [AMD/ATI]");
    g->subvendor_id = 0x1002;
    g->device_id = 0x75a3;
    snprintf(g->asic_serial, sizeof g->asic_serial, "%016" PRIX64, serial);
    g->oam_id = (uint32_t)i;
    g->num_compute_units = 256;
    g->gfx_version = 0x950;
    g->subsystem_id = 0x75a3;
    sim_copy(g->model_number, SIM_STR, "102-G30211-00");
    snprintf(g->product_serial, sizeof g->product_serial, "692%05u%04d", node, i);
    sim_copy(g->product_name, SIM_STR, "AMD Instinct MI355X OAM");
    sim_copy(g->manufacturer_name, SIM_STR, "AMD");
    for (int b = 0; b < SIM_NUM_BLOCKS; b++) g->ras_state[b] = AMDSMI_RAS_ERR_STATE_ENABLED;
    g->ras_eeprom_version = 0x30000;
    g->ras_schema = 0xF;
    g->bad_page_threshold = 128;
    g->pcie_max_width = 16;
    g->pcie_max_speed = 32000;
    g->pcie_version = 5;
    g->pcie_max_version = 5;
    g->pcie_slot_type = AMDSMI_CARD_FORM_FACTOR_OAM;
    g->pcie_width = 16;
    g->pcie_speed = 32000;
    g->xgmi_n_links = 0; /* no explicit slots: every slot derived from the hive (sim_link) */
    g->xgmi_error_inval = 1;
    g->vram_total = 288ULL << 30; /* 288 GB HBM3E */
    g->vram_used = 283ULL << 20;  /* what the driver keeps at idle */
    g->power_cap = 1400000000ULL; /* 1400 W */
    g->power_cap_default = 1400000000ULL;
    g->power_cap_min = 200000000ULL;
    g->power_cap_max = 1400000000ULL;
    g->xgmi_lanes = 16;
    g->xgmi_hive_id = 0x4D49333535580000ULL + node;
    g->xgmi_node_id = (uint64_t)i;
    g->xgmi_index = (uint32_t)i;
    sim_set_temp(g, AMDSMI_TEMPERATURE_TYPE_HOTSPOT, 45, 100, 105, 110);
    sim_set_temp(g, AMDSMI_TEMPERATURE_TYPE_VRAM, 40, 95, 100, 105);
    for (size_t f = 0; f < sizeof k_default_fw / sizeof k_default_fw[0]; f++) {
        uint64_t id = 0;
        if (sim_lookup(sim_fw_names, "AMDSMI_FW_ID_", k_default_fw[f].name, &id)) {
            g->fw_id[g->n_fw] = (uint32_t)id;
            g->fw_version[g->n_fw] = k_default_fw[f].version;
            g->n_fw++;
        }
    }
    sim_copy(g->vbios_name, SIM_STR, "AMD MI355X GENERIC");
    sim_copy(g->vbios_build_date, SIM_STR, "2025/05/20 12:00");
    sim_copy(g->vbios_part_number, SIM_STR, "113-M3550100-101");
    sim_copy(g->vbios_version, SIM_STR, "022.040.003.043.000001");
    sim_copy(g->driver_name, SIM_STR, "amdgpu");
    sim_copy(g->driver_version, SIM_STR, "6.14.14");
    sim_copy(g->driver_date, SIM_STR, "2015/01/01 00:00");
    sim_copy(g->compute_partition, SIM_STR, "SPX");
    sim_copy(g->memory_partition, SIM_STR, "NPS1");
    g->numa_node = (i % 8) < 4 ? 0 : 1;
    /* idle: the acceptance guide's example idle GPU (0 % GFX and MEM, 144 MHz GFX clock);
     * MI300/MI355 report VCN activity per engine, not mm_activity (N/A) */
    g->act_gfx = 0;
    g->act_umc = 0;
    g->act_mm = SIM_NA16;
    sim_set_clk(g, AMDSMI_CLK_TYPE_GFX, 144, 500, 2400);
    sim_set_clk(g, AMDSMI_CLK_TYPE_MEM, 1900, 900, 1900);
    sim_set_clk(g, AMDSMI_CLK_TYPE_SOC, 28, 28, 1143);
    sim_set_clk(g, AMDSMI_CLK_TYPE_DF, 1200, 1200, 2000);
    sim_set_clk(g, AMDSMI_CLK_TYPE_VCLK0, 29, 29, 1333);
    sim_set_clk(g, AMDSMI_CLK_TYPE_DCLK0, 22, 22, 1143);
    g->power_current = 251;
    g->power_average = SIM_NA16;
    g->perf_level = AMDSMI_DEV_PERF_LEVEL_AUTO;
    for (int l = 0; l < SIM_MAX_LINKS; l++) {
        g->xgmi_bit_rate[l] = 32;
        g->xgmi_width[l] = 16;
    }
    sim_copy(g->vram_vendor, SIM_STR, "HYNIX");
    g->num_partition = 1;
}

/* ------------------------------------------------------------------ state parser */

typedef enum { F_U32, F_U64, F_I32, F_STR, F_BOOL } sim_ftype_t;

typedef struct {
    const char *key;
    sim_ftype_t type;
    size_t off;
    size_t size;
} sim_field_t;

#define FLD(k, t, m) {k, t, offsetof(sim_gpu_t, m), sizeof(((sim_gpu_t *)0)->m)}

static const sim_field_t k_fields[] = {
    FLD("enumerated", F_BOOL, enumerated),
    FLD("uuid", F_STR, uuid),
    FLD("drm_render", F_U32, drm_render),
    FLD("drm_card", F_U32, drm_card),
    FLD("hsa_id", F_U32, hsa_id),
    FLD("hip_id", F_U32, hip_id),
    FLD("hip_uuid", F_STR, hip_uuid),
    FLD("kfd_id", F_U64, kfd_id),
    FLD("kfd_node_id", F_U32, kfd_node_id),
    FLD("current_partition_id", F_U32, current_partition_id),
    FLD("market_name", F_STR, market_name),
    FLD("vendor_id", F_U32, vendor_id),
    FLD("vendor_name", F_STR, vendor_name),
    FLD("subvendor_id", F_U32, subvendor_id),
    FLD("device_id", F_U64, device_id),
    FLD("rev_id", F_U32, rev_id),
    FLD("asic_serial", F_STR, asic_serial),
    FLD("oam_id", F_U32, oam_id),
    FLD("num_compute_units", F_U32, num_compute_units),
    FLD("subsystem_id", F_U32, subsystem_id),
    FLD("board.model_number", F_STR, model_number),
    FLD("board.product_serial", F_STR, product_serial),
    FLD("board.fru_id", F_STR, fru_id),
    FLD("board.product_name", F_STR, product_name),
    FLD("board.manufacturer_name", F_STR, manufacturer_name),
    FLD("ras.eeprom_version", F_U32, ras_eeprom_version),
    FLD("ras.ecc_schema_flag", F_U32, ras_schema),
    FLD("bad_page_threshold", F_U32, bad_page_threshold),
    FLD("pcie.max_width", F_U32, pcie_max_width),
    FLD("pcie.max_speed", F_U32, pcie_max_speed),
    FLD("pcie.interface_version", F_U32, pcie_version),
    FLD("pcie.max_interface_version", F_U32, pcie_max_version),
    FLD("pcie.width", F_U32, pcie_width),
    FLD("pcie.speed", F_U32, pcie_speed),
    FLD("pcie.bandwidth", F_U32, pcie_bandwidth),
    FLD("pcie.replay_count", F_U64, pcie_replay),
    FLD("pcie.l0_to_recovery_count", F_U64, pcie_l0_recovery),
    FLD("pcie.replay_roll_over_count", F_U64, pcie_replay_rollover),
    FLD("pcie.nak_sent_count", F_U64, pcie_nak_sent),
    FLD("pcie.nak_received_count", F_U64, pcie_nak_received),
    FLD("pcie.lc_perf_other_end_recovery_count", F_U32, pcie_other_end_recovery),
    FLD("xgmi.lanes", F_U32, xgmi_lanes),
    FLD("vram.total", F_U64, vram_total),
    FLD("vram.used", F_U64, vram_used),
    FLD("power.cap", F_U64, power_cap),
    FLD("power.cap_default", F_U64, power_cap_default),
    FLD("power.cap_min", F_U64, power_cap_min),
    FLD("power.cap_max", F_U64, power_cap_max),
    FLD("throttle_status", F_U64, throttle_status),
    FLD("xgmi.hive_id", F_U64, xgmi_hive_id),
    FLD("xgmi.node_id", F_U64, xgmi_node_id),
    FLD("xgmi.index", F_U32, xgmi_index),
    FLD("vbios.name", F_STR, vbios_name),
    FLD("vbios.build_date", F_STR, vbios_build_date),
    FLD("vbios.part_number", F_STR, vbios_part_number),
    FLD("vbios.version", F_STR, vbios_version),
    FLD("driver.name", F_STR, driver_name),
    FLD("driver.version", F_STR, driver_version),
    FLD("driver.date", F_STR, driver_date),
    FLD("compute_partition", F_STR, compute_partition),
    FLD("memory_partition", F_STR, memory_partition),
    FLD("numa_node", F_I32, numa_node),
    FLD("activity.gfx", F_U32, act_gfx),
    FLD("activity.umc", F_U32, act_umc),
    FLD("activity.mm", F_U32, act_mm),
    FLD("power.current", F_U32, power_current),
    FLD("power.average", F_U32, power_average),
    FLD("vram.vendor", F_STR, vram_vendor),
    FLD("num_partition", F_U32, num_partition),
    {NULL, F_U32, 0, 0},
};

typedef struct {
    const char *path;
    int line;
} sim_pos_t;

static int sim_error(const sim_pos_t *pos, const char *fmt, ...) {
    char msg[SIM_ERR_LEN / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pos && pos->line > 0)
        snprintf(g_last_error, sizeof g_last_error, "%s:%d: %s", pos->path, pos->line, msg);
    else
        snprintf(g_last_error, sizeof g_last_error, "%s", msg);
    fprintf(stderr, "tuner-sim libamd_smi: %s\n", g_last_error);
    return 0;
}

static int sim_block_index(const char *name, int *out) {
    uint64_t v;
    if (!sim_lookup(sim_gpu_block_names, "AMDSMI_GPU_BLOCK_", name, &v) || v == 0) return 0;
    *out = __builtin_ctzll(v);
    return 1;
}

static int sim_set_fail(const sim_pos_t *pos, const char *fname, const char *val,
                        uint8_t *set, uint32_t *fail) {
    int idx = sim_symbol_index(fname);
    if (idx < 0) return sim_error(pos, "fail.%s: no such amdsmi function", fname);
    uint32_t st;
    if (!sim_parse_status(val, &st)) return sim_error(pos, "fail.%s: bad status '%s'", fname, val);
    set[idx] = 1;
    fail[idx] = st;
    return 1;
}

static int sim_parse_gpu_key(const sim_pos_t *pos, sim_gpu_t *g, const char *key, char *val) {
    for (const sim_field_t *f = k_fields; f->key; f++) {
        if (strcmp(f->key, key) != 0) continue;
        char *p = (char *)g + f->off;
        uint64_t u;
        int64_t s;
        int b;
        switch (f->type) {
        case F_STR:
            if (strlen(val) >= f->size) return sim_error(pos, "%s: value too long", key);
            sim_copy(p, f->size, val);
            return 1;
        case F_U32:
            if (!sim_parse_u64(val, &u) || u > 0xFFFFFFFFu)
                return sim_error(pos, "%s: expected an unsigned 32-bit integer, got '%s'", key, val);
            *(uint32_t *)p = (uint32_t)u;
            return 1;
        case F_U64:
            if (!sim_parse_u64(val, &u))
                return sim_error(pos, "%s: expected an unsigned integer, got '%s'", key, val);
            *(uint64_t *)p = u;
            return 1;
        case F_I32:
            if (!sim_parse_i64(val, &s) || s < INT32_MIN || s > INT32_MAX)
                return sim_error(pos, "%s: expected an integer, got '%s'", key, val);
            *(int32_t *)p = (int32_t)s;
            return 1;
        case F_BOOL:
            if (!sim_parse_bool(val, &b))
                return sim_error(pos, "%s: expected true or false, got '%s'", key, val);
            *(int *)p = b;
            return 1;
        }
    }
    if (!strcmp(key, "bdf")) {
        unsigned dom, bus, dev, fn;
        char tail;
        if (sscanf(val, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) != 4 || bus > 0xff ||
            dev > 0x1f || fn > 7)
            return sim_error(pos, "bdf: expected dddd:bb:dd.f, got '%s'", val);
        g->domain = dom;
        g->bus = bus;
        g->dev = dev;
        g->fn = fn;
        return 1;
    }
    if (!strcmp(key, "target_graphics_version")) {
        const char *v = val;
        if (!strncasecmp(v, "gfx", 3)) v += 3;
        char *end;
        unsigned long long x = strtoull(v, &end, 16);
        if (!*v || *end) return sim_error(pos, "%s: expected gfxNNN, got '%s'", key, val);
        g->gfx_version = x;
        return 1;
    }
    if (!strcmp(key, "pcie.slot_type")) {
        uint64_t v;
        if (!sim_parse_u64(val, &v) &&
            !sim_lookup(sim_form_factor_names, "AMDSMI_CARD_FORM_FACTOR_", val, &v))
            return sim_error(pos, "%s: unknown form factor '%s'", key, val);
        g->pcie_slot_type = (uint32_t)v;
        return 1;
    }
    if (!strcmp(key, "xgmi.error_status")) {
        uint64_t v;
        if (!strcasecmp(val, "inval")) {
            g->xgmi_error_inval = 1;
            return 1;
        }
        if (!sim_parse_u64(val, &v) || v > 2)
            return sim_error(pos, "%s: expected 0, 1, 2 or inval, got '%s'", key, val);
        g->xgmi_error = (uint32_t)v;
        g->xgmi_error_inval = 0;
        return 1;
    }
    if (!strcmp(key, "perf_level")) {
        uint64_t v;
        if (!sim_parse_u64(val, &v) &&
            !sim_lookup(sim_perf_level_names, "AMDSMI_DEV_PERF_LEVEL_", val, &v))
            return sim_error(pos, "%s: unknown performance level '%s'", key, val);
        g->perf_level = (uint32_t)v;
        return 1;
    }
    if (!strcmp(key, "xgmi.bit_rate") || !strcmp(key, "xgmi.width")) {
        uint32_t *arr = !strcmp(key, "xgmi.bit_rate") ? g->xgmi_bit_rate : g->xgmi_width;
        char *fields[SIM_MAX_LINKS + 1];
        for (char *p = val; *p; p++)
            if (*p == ',') *p = ' ';
        int n = 0;
        for (char *tok = strtok(val, " \t"); tok; tok = strtok(NULL, " \t")) {
            if (n >= SIM_MAX_LINKS) return sim_error(pos, "%s: at most %d links", key, SIM_MAX_LINKS);
            fields[n++] = tok;
        }
        if (n == 0) return sim_error(pos, "%s: expected one value per link", key);
        for (int l = 0; l < SIM_MAX_LINKS; l++) {
            uint64_t v;
            const char *f = fields[l < n ? l : n - 1]; /* the last value repeats */
            if (!sim_parse_u64(f, &v) || v > 0xFFFFFFFFu)
                return sim_error(pos, "%s: expected integers, got '%s'", key, f);
            arr[l] = (uint32_t)v;
        }
        return 1;
    }
    if (!strncmp(key, "clock.", 6)) {
        char ty[64];
        const char *dot = strchr(key + 6, '.');
        uint64_t t;
        if (!dot || (size_t)(dot - (key + 6)) >= sizeof ty)
            return sim_error(pos, "%s: expected clock.<type>.<current|min|max>", key);
        memcpy(ty, key + 6, (size_t)(dot - (key + 6)));
        ty[dot - (key + 6)] = '\0';
        if (!sim_lookup(sim_clk_type_names, "AMDSMI_CLK_TYPE_", ty, &t) || t >= SIM_CLK_TYPES)
            return sim_error(pos, "%s: unknown clock type '%s'", key, ty);
        if (!strcasecmp(val, "unsupported")) {
            g->clk_set[t] = 0;
            return 1;
        }
        uint64_t v;
        if (!sim_parse_u64(val, &v) || v > 0xFFFFFFFFu)
            return sim_error(pos, "%s: expected MHz or 'unsupported', got '%s'", key, val);
        if (!strcmp(dot + 1, "current")) g->clk_cur[t] = (uint32_t)v;
        else if (!strcmp(dot + 1, "min")) g->clk_min[t] = (uint32_t)v;
        else if (!strcmp(dot + 1, "max")) g->clk_max[t] = (uint32_t)v;
        else return sim_error(pos, "%s: expected current, min or max", key);
        g->clk_set[t] = 1;
        return 1;
    }
    if (!strcmp(key, "xgmi.link_status")) {
        uint32_t n = 0;
        for (char *p = val; *p; p++) {
            if (isspace((unsigned char)*p) || *p == ',') continue;
            uint32_t st;
            switch (toupper((unsigned char)*p)) {
            case 'U': case '1': st = AMDSMI_XGMI_LINK_UP; break;
            case 'D': case '0': st = AMDSMI_XGMI_LINK_DOWN; break;
            case 'X': case '2': st = AMDSMI_XGMI_LINK_DISABLE; break;
            default: return sim_error(pos, "%s: link states are U, D or X, got '%c'", key, *p);
            }
            if (n >= SIM_MAX_LINKS) return sim_error(pos, "%s: at most %d links", key, SIM_MAX_LINKS);
            g->xgmi_link[n++] = st;
        }
        g->xgmi_n_links = n;
        return 1;
    }
    if (!strncmp(key, "ecc.", 4)) {
        char blk[64];
        const char *dot = strchr(key + 4, '.');
        int bi;
        if (!dot || (size_t)(dot - (key + 4)) >= sizeof blk)
            return sim_error(pos, "%s: expected ecc.<block>.<correctable|uncorrectable|deferred>", key);
        memcpy(blk, key + 4, (size_t)(dot - (key + 4)));
        blk[dot - (key + 4)] = '\0';
        if (!sim_block_index(blk, &bi)) return sim_error(pos, "%s: unknown GPU block '%s'", key, blk);
        int kind = !strcmp(dot + 1, "correctable")     ? 0
                   : !strcmp(dot + 1, "uncorrectable") ? 1
                   : !strcmp(dot + 1, "deferred")      ? 2
                                                       : -1;
        if (kind < 0) return sim_error(pos, "%s: expected correctable, uncorrectable or deferred", key);
        uint64_t v;
        if (!sim_parse_u64(val, &v)) return sim_error(pos, "%s: expected a count, got '%s'", key, val);
        g->ecc[bi][kind] = v;
        return 1;
    }
    if (!strncmp(key, "ras.", 4)) {
        int bi;
        uint64_t v;
        if (!sim_block_index(key + 4, &bi)) return sim_error(pos, "%s: unknown GPU block", key);
        if (!sim_parse_u64(val, &v) &&
            !sim_lookup(sim_ras_state_names, "AMDSMI_RAS_ERR_STATE_", val, &v))
            return sim_error(pos, "%s: unknown RAS state '%s'", key, val);
        g->ras_state[bi] = (uint32_t)v;
        return 1;
    }
    if (!strncmp(key, "temp.", 5)) {
        char sensor[64];
        const char *dot = strchr(key + 5, '.');
        uint64_t t, m;
        if (!dot || (size_t)(dot - (key + 5)) >= sizeof sensor)
            return sim_error(pos, "%s: expected temp.<sensor>.<metric>", key);
        memcpy(sensor, key + 5, (size_t)(dot - (key + 5)));
        sensor[dot - (key + 5)] = '\0';
        if (!sim_lookup(sim_temp_type_names, "AMDSMI_TEMPERATURE_TYPE_", sensor, &t) ||
            t >= SIM_TEMP_TYPES)
            return sim_error(pos, "%s: unknown temperature sensor '%s'", key, sensor);
        if (!sim_lookup(sim_temp_metric_names, "AMDSMI_TEMP_", dot + 1, &m) || m >= SIM_TEMP_METRICS)
            return sim_error(pos, "%s: unknown temperature metric '%s'", key, dot + 1);
        if (!strcasecmp(val, "unsupported")) {
            g->temp_set[t][m] = 0;
            return 1;
        }
        int64_t v;
        if (!sim_parse_i64(val, &v))
            return sim_error(pos, "%s: expected degrees C or 'unsupported', got '%s'", key, val);
        g->temp[t][m] = v;
        g->temp_set[t][m] = 1;
        return 1;
    }
    if (!strcmp(key, "fw")) {
        if (strcasecmp(val, "none")) return sim_error(pos, "fw: only 'fw = none' (clear) is allowed");
        g->n_fw = 0;
        return 1;
    }
    if (!strncmp(key, "fw.", 3)) {
        uint64_t id, v;
        if (!sim_lookup(sim_fw_names, "AMDSMI_FW_ID_", key + 3, &id))
            return sim_error(pos, "%s: '%s' is not a firmware id amdsmi accepts", key, key + 3);
        uint32_t k;
        for (k = 0; k < g->n_fw && g->fw_id[k] != id; k++) {}
        if (!strcasecmp(val, "none")) {
            if (k < g->n_fw) {
                memmove(&g->fw_id[k], &g->fw_id[k + 1], (g->n_fw - k - 1) * sizeof g->fw_id[0]);
                memmove(&g->fw_version[k], &g->fw_version[k + 1],
                        (g->n_fw - k - 1) * sizeof g->fw_version[0]);
                g->n_fw--;
            }
            return 1;
        }
        if (!sim_parse_u64(val, &v)) return sim_error(pos, "%s: expected a version integer", key);
        if (k == g->n_fw) {
            if (g->n_fw >= SIM_MAX_FW) return sim_error(pos, "too many firmware entries");
            g->n_fw++;
        }
        g->fw_id[k] = (uint32_t)id;
        g->fw_version[k] = v;
        return 1;
    }
    if (!strcmp(key, "bad_page")) {
        char *f[3];
        uint64_t addr, size, st;
        int n = sim_split(val, ',', f, 3);
        if (n < 1 || !sim_parse_u64(f[0], &addr))
            return sim_error(pos, "bad_page: expected <address>[, <size>[, <status>]]");
        size = 4096;
        st = 0;
        if (n >= 2 && !sim_parse_u64(f[1], &size)) return sim_error(pos, "bad_page: bad size '%s'", f[1]);
        if (n >= 3) {
            if (!strcasecmp(f[2], "reserved")) st = 0;
            else if (!strcasecmp(f[2], "pending")) st = 1;
            else if (!strcasecmp(f[2], "unreservable")) st = 2;
            else if (!sim_parse_u64(f[2], &st) || st > 0xFFFFFFFFu)
                return sim_error(pos, "bad_page: status is reserved, pending or unreservable");
        }
        if (g->n_bad_pages >= SIM_MAX_BAD_PAGES)
            return sim_error(pos, "bad_page: at most %d pages", SIM_MAX_BAD_PAGES);
        g->bad_pages[g->n_bad_pages].address = addr;
        g->bad_pages[g->n_bad_pages].size = size;
        g->bad_pages[g->n_bad_pages].status = (uint32_t)st;
        g->n_bad_pages++;
        return 1;
    }
    if (!strcmp(key, "process")) {
        char *f[4];
        uint64_t pid, mem = 0, cu = 0;
        int n = sim_split(val, ',', f, 4);
        if (n < 2 || !sim_parse_u64(f[0], &pid) || pid > 0xFFFFFFFFu)
            return sim_error(pos, "process: expected <pid>, <name>[, <vram bytes>[, <cu occupancy>]]");
        if (n >= 3 && !sim_parse_u64(f[2], &mem)) return sim_error(pos, "process: bad memory '%s'", f[2]);
        if (n >= 4 && (!sim_parse_u64(f[3], &cu) || cu > 0xFFFFFFFFu))
            return sim_error(pos, "process: bad cu occupancy '%s'", f[3]);
        if (g->n_procs >= SIM_MAX_PROCS) return sim_error(pos, "process: at most %d", SIM_MAX_PROCS);
        sim_proc_t *p = &g->procs[g->n_procs++];
        p->pid = (uint32_t)pid;
        sim_copy(p->name, SIM_STR, f[1]);
        p->mem = mem;
        p->cu_occupancy = (uint32_t)cu;
        return 1;
    }
    if (!strcmp(key, "cper")) {
        char *f[4];
        uint64_t sev, notify = 0;
        sim_cper_t c;
        memset(&c, 0, sizeof c);
        int n = sim_split(val, ',', f, 4);
        if (n < 2)
            return sim_error(pos, "cper: expected <severity>, <YYYY-MM-DD HH:MM:SS>[, <notify>[, <id>]]");
        if (!sim_parse_u64(f[0], &sev) && !sim_lookup(sim_cper_sev_names, "AMDSMI_CPER_SEV_", f[0], &sev))
            return sim_error(pos, "cper: unknown severity '%s'", f[0]);
        if (sscanf(f[1], "%u-%u-%u %u:%u:%u", &c.year, &c.month, &c.day, &c.hours, &c.minutes,
                   &c.seconds) != 6)
            return sim_error(pos, "cper: bad timestamp '%s'", f[1]);
        if (n >= 3 && f[2][0] && !sim_lookup(sim_cper_notify_names, "AMDSMI_CPER_NOTIFY_TYPE_", f[2], &notify))
            return sim_error(pos, "cper: unknown notify type '%s'", f[2]);
        if (n < 3 || !f[2][0]) sim_lookup(sim_cper_notify_names, "AMDSMI_CPER_NOTIFY_TYPE_", "MCE", &notify);
        c.severity = (uint32_t)sev;
        c.notify = notify;
        if (n >= 4) sim_copy(c.record_id, SIM_STR, f[3]);
        else snprintf(c.record_id, sizeof c.record_id, "%u", g->n_cper + 1);
        if (g->n_cper >= SIM_MAX_CPER) return sim_error(pos, "cper: at most %d entries", SIM_MAX_CPER);
        g->cper[g->n_cper++] = c;
        return 1;
    }
    if (!strncmp(key, "fail.", 5)) return sim_set_fail(pos, key + 5, val, g->fail_set, g->fail);
    return sim_error(pos, "unknown key '%s'", key);
}

/* Value: a "quoted string" or text up to an inline comment (whitespace then #). */
static int sim_value(const sim_pos_t *pos, char *raw, char **out) {
    char *v = sim_trim(raw);
    if (*v == '"') {
        char *w = v, *r = v + 1;
        while (*r && *r != '"') {
            if (*r == '\\' && (r[1] == '"' || r[1] == '\\')) r++;
            *w++ = *r++;
        }
        if (*r != '"') return sim_error(pos, "unterminated quoted string");
        *w = '\0';
        char *rest = sim_trim(r + 1);
        if (*rest && *rest != '#' && *rest != ';') return sim_error(pos, "text after quoted string");
        *out = v;
        return 1;
    }
    for (char *p = v; *p; p++) {
        if ((*p == '#' || *p == ';') && (p == v || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            break;
        }
    }
    *out = sim_trim(v);
    return 1;
}

static int sim_parse_state(const char *path, char *text) {
    sim_pos_t pos = {path, 0};
    sim_gpu_t *cur = NULL;
    int in_node = 0, saw_gpu = 0;
    char *line = text; /* split by hand: strtok would skip empty lines and miscount */
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        pos.line++;
        char *s = sim_trim(line);
        line = nl ? nl + 1 : NULL;
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || *sim_trim(end + 1)) return sim_error(&pos, "bad section header");
            *end = '\0';
            char *name = sim_trim(s + 1);
            if (!strcmp(name, "node")) {
                if (saw_gpu) return sim_error(&pos, "[node] must come before the [gpu.N] sections");
                in_node = 1;
                cur = NULL;
                continue;
            }
            uint64_t idx;
            if (strncmp(name, "gpu.", 4) || !sim_parse_u64(name + 4, &idx))
                return sim_error(&pos, "unknown section [%s] (expected [node] or [gpu.N])", name);
            if (idx >= SIM_MAX_GPUS) return sim_error(&pos, "at most %d GPUs", SIM_MAX_GPUS);
            if ((int)idx != g_num_gpus)
                return sim_error(&pos, "[gpu.%d] expected next (sections numbered 0, 1, 2, ...)",
                                 g_num_gpus);
            cur = &g_gpus[g_num_gpus];
            sim_gpu_defaults(cur, g_num_gpus, g_node_index);
            g_num_gpus++;
            in_node = 0;
            saw_gpu = 1;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return sim_error(&pos, "expected 'key = value'");
        *eq = '\0';
        char *key = sim_trim(s);
        char *val = NULL;
        if (!sim_value(&pos, eq + 1, &val)) return 0;
        if (in_node) {
            if (!strcmp(key, "index")) {
                uint64_t v;
                if (!sim_parse_u64(val, &v) || v > 0xFFFFFFFFu)
                    return sim_error(&pos, "index: expected an unsigned integer");
                g_node_index = (uint32_t)v;
            } else if (!strcmp(key, "privileged")) {
                int b;
                if (!strcasecmp(val, "auto")) g_privileged = -1;
                else if (sim_parse_bool(val, &b)) g_privileged = b;
                else return sim_error(&pos, "privileged: expected auto, true or false");
            } else if (!strcmp(key, "lib_version")) {
                unsigned a, b2, c;
                if (sscanf(val, "%u.%u.%u", &a, &b2, &c) != 3 || strlen(val) >= SIM_STR)
                    return sim_error(&pos, "lib_version: expected MAJOR.MINOR.RELEASE");
                sim_copy(g_lib_version, SIM_STR, val);
            } else if (!strcmp(key, "hang_ms")) {
                uint64_t v;
                if (!sim_parse_u64(val, &v) || v > 3600000u)
                    return sim_error(&pos, "hang_ms: expected milliseconds (0-3600000)");
                g_hang_ms = (uint32_t)v;
            } else if (!strncmp(key, "fail.", 5)) {
                if (!sim_set_fail(&pos, key + 5, val, g_node_fail_set, g_node_fail)) return 0;
            } else {
                return sim_error(&pos, "unknown [node] key '%s'", key);
            }
        } else if (cur) {
            if (!sim_parse_gpu_key(&pos, cur, key, val)) return 0;
        } else {
            return sim_error(&pos, "key outside a section");
        }
    }
    return 1;
}

static const char *sim_resolve_state_path(void) {
    const char *env = getenv("TUNER_SIM_GPU_STATE");
    if (env && *env) {
        sim_copy(g_state_path, sizeof g_state_path, env);
        return g_state_path;
    }
    Dl_info info;
    if (!dladdr((void *)&sim_resolve_state_path, &info) || !info.dli_fname) return NULL;
    char dir[4096];
    sim_copy(dir, sizeof dir, info.dli_fname);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else sim_copy(dir, sizeof dir, ".");
    snprintf(g_state_path, sizeof g_state_path, "%s/../share/tuner-sim/gpu-state", dir);
    return g_state_path;
}

static void sim_reset(void) {
    memset(g_gpus, 0, sizeof g_gpus);
    g_num_gpus = 0;
    g_num_sockets = 0;
    g_node_index = 0;
    g_privileged = -1;
    g_lib_version[0] = '\0';
    memset(g_node_fail_set, 0, sizeof g_node_fail_set);
    memset(g_node_fail, 0, sizeof g_node_fail);
}

static int sim_load_state(void) {
    sim_reset();
    g_last_error[0] = '\0';
    const char *path = sim_resolve_state_path();
    if (!path) return sim_error(NULL, "cannot locate the state file (dladdr failed)");
    FILE *f = fopen(path, "rb");
    if (!f) return sim_error(NULL, "cannot open GPU state file %s", path);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return sim_error(NULL, "out of memory reading %s", path);
    buf[len] = '\0';
    int ok = sim_parse_state(path, buf);
    free(buf);
    if (!ok) sim_reset();
    return ok;
}

/* ------------------------------------------------------------------ handles, injection */

static sim_gpu_t *sim_gpu_from_handle(const void *h) {
    uintptr_t off = (uintptr_t)h - (uintptr_t)g_gpus;
    if (!h || (uintptr_t)h < (uintptr_t)g_gpus || off % sizeof(sim_gpu_t) != 0) return NULL;
    size_t i = off / sizeof(sim_gpu_t);
    if (i >= (size_t)g_num_gpus || !g_gpus[i].enumerated) return NULL;
    return &g_gpus[i];
}

static sim_socket_t *sim_socket_from_handle(const void *h) {
    uintptr_t off = (uintptr_t)h - (uintptr_t)g_sockets;
    if (!h || (uintptr_t)h < (uintptr_t)g_sockets || off % sizeof(sim_socket_t) != 0) return NULL;
    size_t i = off / sizeof(sim_socket_t);
    if (i >= (size_t)g_num_sockets) return NULL;
    return &g_sockets[i];
}

static int sim_injected(const char *name, const sim_gpu_t *g, uint32_t *status) {
    int idx = sim_symbol_index(name);
    if (idx < 0) return 0;
    if (g && g->fail_set[idx]) {
        *status = g->fail[idx];
        return 1;
    }
    if (g_node_fail_set[idx]) {
        *status = g_node_fail[idx];
        return 1;
    }
    return 0;
}

/* Called by every generated stub. */
SIM_API uint32_t sim_stub_status(const char *name, const void *handle) {
    uint32_t st;
    sim_gpu_t *g = g_init ? sim_gpu_from_handle(handle) : NULL;
    if (sim_injected(name, g, &st)) return st;
    return AMDSMI_STATUS_NOT_SUPPORTED;
}

static uint32_t sim_enter(const char *name, const void *h, sim_gpu_t **out) {
    uint32_t st;
    if (!g_init) return AMDSMI_STATUS_NOT_INIT;
    sim_gpu_t *g = sim_gpu_from_handle(h);
    if (!g) return AMDSMI_STATUS_INVAL;
    if (sim_injected(name, g, &st)) return st;
    *out = g;
    return AMDSMI_STATUS_SUCCESS;
}

#define ENTER(h, g)                                           \
    sim_gpu_t *g = NULL;                                      \
    do {                                                      \
        uint32_t enter_st_ = sim_enter(__func__, (h), &g);    \
        if (enter_st_ != AMDSMI_STATUS_SUCCESS) return enter_st_; \
    } while (0)

#define NEED(p) do { if (!(p)) return AMDSMI_STATUS_INVAL; } while (0)

/* Does the caller have root? Debugfs (/sys/kernel/debug) is root-only (docs/sim-gpu-state.md). */
static int sim_privileged(void) { return g_privileged >= 0 ? g_privileged : geteuid() == 0; }

/* XGMI link slot L of G as the library reports it: an explicit state from the file, else
 * derived from the hive: slot L is the link to the GPU whose xgmi index is L; its own slot
 * and slots without a GPU are disabled; a peer that is not enumerated (off the bus) is down. */
static uint32_t sim_link(const sim_gpu_t *g, uint32_t l) {
    if (l < g->xgmi_n_links) return g->xgmi_link[l];
    if (l == g->xgmi_index) return AMDSMI_XGMI_LINK_DISABLE;
    for (int i = 0; i < g_num_gpus; i++) {
        const sim_gpu_t *p = &g_gpus[i];
        if (p == g || p->xgmi_hive_id != g->xgmi_hive_id || p->xgmi_index != l) continue;
        return p->enumerated ? AMDSMI_XGMI_LINK_UP : AMDSMI_XGMI_LINK_DOWN;
    }
    return AMDSMI_XGMI_LINK_DISABLE;
}

static const sim_gpu_t *sim_link_peer(const sim_gpu_t *g, uint32_t l) {
    /* the GPU's own slot has no peer; with compute partitions the logical devices of one
     * physical GPU share its XGMI index: a slot reaches the first logical device (partition
     * 0) of the peer GPU */
    if (l == g->xgmi_index) return NULL;
    for (int i = 0; i < g_num_gpus; i++) {
        const sim_gpu_t *p = &g_gpus[i];
        if (p != g && p->xgmi_hive_id == g->xgmi_hive_id && p->xgmi_index == l) return p;
    }
    return NULL;
}

/* Extra exports for tests and debugging. */
SIM_API const char *tuner_sim_last_error(void) { return g_last_error; }
SIM_API const char *tuner_sim_state_path(void) {
    return g_state_path[0] ? g_state_path : sim_resolve_state_path();
}

/* ------------------------------------------------------------------ lifecycle */

uint32_t amdsmi_init(uint64_t flags) {
    g_init = 0;
    g_hang_ms = 0;
    if (!sim_load_state()) return AMDSMI_STATUS_INIT_ERROR;
    if (g_hang_ms) { /* a hung driver: init blocks (tests the gate's per-node deadline) */
        struct timespec ts = {(time_t)(g_hang_ms / 1000), (long)(g_hang_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
    }
    uint32_t st;
    if (sim_injected(__func__, NULL, &st) && st != AMDSMI_STATUS_SUCCESS) {
        sim_reset();
        return st;
    }
    if (flags & AMDSMI_INIT_AMD_GPUS) {
        for (int i = 0; i < g_num_gpus; i++)
            if (g_gpus[i].enumerated) g_sockets[g_num_sockets++].gpu = i;
    }
    g_init = 1;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_shut_down(void) {
    uint32_t st;
    if (sim_injected(__func__, NULL, &st)) return st;
    g_init = 0;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_lib_version(struct_amdsmi_version_t *v) {
    static char build[SIM_STR + 16];
    NEED(v);
    const char *ver = g_lib_version[0] ? g_lib_version : SIM_AMDSMI_VERSION;
    snprintf(build, sizeof build, "tuner-sim %s", ver);
    unsigned major = 0, minor = 0, rel = 0;
    sscanf(ver, "%u.%u.%u", &major, &minor, &rel);
    memset(v, 0, sizeof *v);
    v->major = major;
    v->minor = minor;
    v->release = rel;
    v->build = build;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_status_code_to_string(uint32_t status, char **out) {
    NEED(out);
    for (const sim_name_value_t *r = sim_status_names; r->name; r++) {
        if (r->value == status) {
            *out = (char *)r->name;
            return AMDSMI_STATUS_SUCCESS;
        }
    }
    *out = (char *)"AMDSMI_STATUS_UNKNOWN_ERROR";
    return AMDSMI_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ enumeration */

uint32_t amdsmi_get_socket_handles(uint32_t *count, void **handles) {
    uint32_t st;
    if (!g_init) return AMDSMI_STATUS_NOT_INIT;
    NEED(count);
    if (sim_injected(__func__, NULL, &st)) return st;
    if (!handles) {
        *count = (uint32_t)g_num_sockets;
        return AMDSMI_STATUS_SUCCESS;
    }
    uint32_t n = *count < (uint32_t)g_num_sockets ? *count : (uint32_t)g_num_sockets;
    for (uint32_t i = 0; i < n; i++) handles[i] = &g_sockets[i];
    *count = n;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_socket_info(void *sock, uint64_t len, char *name) {
    if (!g_init) return AMDSMI_STATUS_NOT_INIT;
    sim_socket_t *s = sim_socket_from_handle(sock);
    NEED(s && name && len);
    sim_gpu_t *g = &g_gpus[s->gpu];
    uint32_t st;
    if (sim_injected(__func__, g, &st)) return st;
    snprintf(name, len, "%04" PRIx64 ":%02x:%02x.%x", g->domain, g->bus, g->dev, g->fn);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_processor_handles(void *sock, uint32_t *count, void **handles) {
    uint32_t st;
    if (!g_init) return AMDSMI_STATUS_NOT_INIT;
    NEED(count);
    int list[SIM_MAX_GPUS];
    uint32_t total = 0;
    if (sock) {
        sim_socket_t *s = sim_socket_from_handle(sock);
        NEED(s);
        if (sim_injected(__func__, &g_gpus[s->gpu], &st)) return st;
        list[total++] = s->gpu;
    } else {
        if (sim_injected(__func__, NULL, &st)) return st;
        for (int i = 0; i < g_num_sockets; i++) list[total++] = g_sockets[i].gpu;
    }
    if (!handles) {
        *count = total;
        return AMDSMI_STATUS_SUCCESS;
    }
    uint32_t n = *count < total ? *count : total;
    for (uint32_t i = 0; i < n; i++) handles[i] = &g_gpus[list[i]];
    *count = n;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_processor_type(void *h, uint32_t *type) {
    ENTER(h, g);
    NEED(type);
    *type = AMDSMI_PROCESSOR_TYPE_AMD_GPU;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_processor_handle_from_bdf(union_amdsmi_bdf_t bdf, void **h) {
    uint32_t st;
    if (!g_init) return AMDSMI_STATUS_NOT_INIT;
    NEED(h);
    if (sim_injected(__func__, NULL, &st)) return st;
    for (int i = 0; i < g_num_sockets; i++) {
        sim_gpu_t *g = &g_gpus[g_sockets[i].gpu];
        if (g->domain == bdf.struct_amdsmi_bdf_t.domain_number &&
            g->bus == bdf.struct_amdsmi_bdf_t.bus_number &&
            g->dev == bdf.struct_amdsmi_bdf_t.device_number &&
            g->fn == bdf.struct_amdsmi_bdf_t.function_number) {
            *h = g;
            return AMDSMI_STATUS_SUCCESS;
        }
    }
    return AMDSMI_STATUS_NOT_FOUND;
}

static void sim_fill_bdf(const sim_gpu_t *g, union_amdsmi_bdf_t *b) {
    memset(b, 0, sizeof *b);
    b->struct_amdsmi_bdf_t.domain_number = g->domain;
    b->struct_amdsmi_bdf_t.bus_number = g->bus;
    b->struct_amdsmi_bdf_t.device_number = g->dev;
    b->struct_amdsmi_bdf_t.function_number = g->fn;
}

uint32_t amdsmi_get_gpu_device_bdf(void *h, union_amdsmi_bdf_t *bdf) {
    ENTER(h, g);
    NEED(bdf);
    sim_fill_bdf(g, bdf);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_bdf_id(void *h, uint64_t *id) {
    ENTER(h, g);
    NEED(id);
    union_amdsmi_bdf_t b;
    sim_fill_bdf(g, &b);
    *id = b.as_uint;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_device_uuid(void *h, uint32_t *len, char *uuid) {
    ENTER(h, g);
    NEED(len && uuid);
    size_t need = strlen(g->uuid) + 1;
    if (*len < need) {
        *len = (uint32_t)need;
        return AMDSMI_STATUS_INSUFFICIENT_SIZE;
    }
    memcpy(uuid, g->uuid, need);
    *len = (uint32_t)need;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_enumeration_info(void *h, struct_amdsmi_enumeration_info_t *e) {
    ENTER(h, g);
    NEED(e);
    memset(e, 0, sizeof *e);
    e->drm_render = g->drm_render;
    e->drm_card = g->drm_card;
    e->hsa_id = g->hsa_id;
    e->hip_id = g->hip_id;
    sim_copy(e->hip_uuid, sizeof e->hip_uuid, g->hip_uuid);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_kfd_info(void *h, struct_amdsmi_kfd_info_t *k) {
    ENTER(h, g);
    NEED(k);
    memset(k, 0, sizeof *k);
    k->kfd_id = g->kfd_id;
    k->node_id = g->kfd_node_id;
    k->current_partition_id = g->current_partition_id;
    return AMDSMI_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ identity */

uint32_t amdsmi_get_gpu_asic_info(void *h, struct_amdsmi_asic_info_t *a) {
    ENTER(h, g);
    NEED(a);
    memset(a, 0, sizeof *a);
    sim_copy(a->market_name, sizeof a->market_name, g->market_name);
    a->vendor_id = g->vendor_id;
    sim_copy(a->vendor_name, sizeof a->vendor_name, g->vendor_name);
    a->subvendor_id = g->subvendor_id;
    a->device_id = g->device_id;
    a->rev_id = g->rev_id;
    sim_copy(a->asic_serial, sizeof a->asic_serial, g->asic_serial);
    a->oam_id = g->oam_id;
    a->num_of_compute_units = g->num_compute_units;
    a->target_graphics_version = g->gfx_version;
    a->subsystem_id = g->subsystem_id;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_board_info(void *h, struct_amdsmi_board_info_t *b) {
    ENTER(h, g);
    NEED(b);
    memset(b, 0, sizeof *b);
    sim_copy(b->model_number, sizeof b->model_number, g->model_number);
    sim_copy(b->product_serial, sizeof b->product_serial, g->product_serial);
    sim_copy(b->fru_id, sizeof b->fru_id, g->fru_id);
    sim_copy(b->product_name, sizeof b->product_name, g->product_name);
    sim_copy(b->manufacturer_name, sizeof b->manufacturer_name, g->manufacturer_name);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_id(void *h, uint16_t *id) {
    ENTER(h, g);
    NEED(id);
    *id = (uint16_t)g->device_id;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_revision(void *h, uint16_t *rev) {
    ENTER(h, g);
    NEED(rev);
    *rev = (uint16_t)g->rev_id;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_subsystem_id(void *h, uint16_t *id) {
    ENTER(h, g);
    NEED(id);
    *id = (uint16_t)g->subsystem_id;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_vendor_name(void *h, char *name, uint64_t len) {
    ENTER(h, g);
    NEED(name && len);
    if (strlen(g->vendor_name) >= len) return AMDSMI_STATUS_INSUFFICIENT_SIZE;
    sim_copy(name, len, g->vendor_name);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_vbios_info(void *h, struct_amdsmi_vbios_info_t *v) {
    ENTER(h, g);
    NEED(v);
    memset(v, 0, sizeof *v);
    sim_copy(v->name, sizeof v->name, g->vbios_name);
    sim_copy(v->build_date, sizeof v->build_date, g->vbios_build_date);
    sim_copy(v->part_number, sizeof v->part_number, g->vbios_part_number);
    sim_copy(v->version, sizeof v->version, g->vbios_version);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_driver_info(void *h, struct_amdsmi_driver_info_t *d) {
    ENTER(h, g);
    NEED(d);
    memset(d, 0, sizeof *d);
    sim_copy(d->driver_name, sizeof d->driver_name, g->driver_name);
    sim_copy(d->driver_version, sizeof d->driver_version, g->driver_version);
    sim_copy(d->driver_date, sizeof d->driver_date, g->driver_date);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_fw_info(void *h, struct_amdsmi_fw_info_t *fw) {
    ENTER(h, g);
    NEED(fw);
    memset(fw, 0, sizeof *fw);
    uint32_t cap = sizeof fw->fw_info_list / sizeof fw->fw_info_list[0];
    uint32_t n = g->n_fw < cap ? g->n_fw : cap;
    fw->num_fw_info = (uint8_t)n;
    for (uint32_t i = 0; i < n; i++) {
        fw->fw_info_list[i].fw_id = g->fw_id[i];
        fw->fw_info_list[i].fw_version = g->fw_version[i];
    }
    return AMDSMI_STATUS_SUCCESS;
}

static uint32_t sim_copy_partition(const char *value, char *out, uint32_t len) {
    NEED(out && len);
    if (strlen(value) >= len) return AMDSMI_STATUS_INSUFFICIENT_SIZE;
    sim_copy(out, len, value);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_compute_partition(void *h, char *out, uint32_t len) {
    ENTER(h, g);
    return sim_copy_partition(g->compute_partition, out, len);
}

uint32_t amdsmi_get_gpu_memory_partition(void *h, char *out, uint32_t len) {
    ENTER(h, g);
    return sim_copy_partition(g->memory_partition, out, len);
}

/* ------------------------------------------------------------------ RAS / ECC */

static uint32_t sim_block_bit(uint64_t block, int *bi) {
    if (block == 0 || (block & (block - 1)) != 0) return AMDSMI_STATUS_INVAL;
    *bi = __builtin_ctzll(block);
    for (const sim_name_value_t *r = sim_gpu_block_names; r->name; r++)
        if (r->value == block) return AMDSMI_STATUS_SUCCESS;
    return AMDSMI_STATUS_INVAL;
}

uint32_t amdsmi_get_gpu_total_ecc_count(void *h, struct_amdsmi_error_count_t *ec) {
    ENTER(h, g);
    NEED(ec);
    memset(ec, 0, sizeof *ec);
    for (int b = 0; b < SIM_NUM_BLOCKS; b++) {
        ec->correctable_count += g->ecc[b][0];
        ec->uncorrectable_count += g->ecc[b][1];
        ec->deferred_count += g->ecc[b][2];
    }
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_ecc_count(void *h, uint64_t block, struct_amdsmi_error_count_t *ec) {
    ENTER(h, g);
    NEED(ec);
    int bi;
    uint32_t st = sim_block_bit(block, &bi);
    if (st) return st;
    memset(ec, 0, sizeof *ec);
    ec->correctable_count = g->ecc[bi][0];
    ec->uncorrectable_count = g->ecc[bi][1];
    ec->deferred_count = g->ecc[bi][2];
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_ecc_enabled(void *h, uint64_t *mask) {
    ENTER(h, g);
    NEED(mask);
    *mask = 0;
    for (const sim_name_value_t *r = sim_gpu_block_names; r->name; r++)
        if (g->ras_state[__builtin_ctzll(r->value)] == AMDSMI_RAS_ERR_STATE_ENABLED) *mask |= r->value;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_ecc_status(void *h, uint64_t block, uint32_t *state) {
    ENTER(h, g);
    NEED(state);
    int bi;
    uint32_t st = sim_block_bit(block, &bi);
    if (st) return st;
    *state = g->ras_state[bi];
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_ras_block_features_enabled(void *h, uint64_t block, uint32_t *state) {
    ENTER(h, g);
    NEED(state);
    int bi;
    uint32_t st = sim_block_bit(block, &bi);
    if (st) return st;
    *state = g->ras_state[bi];
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_ras_feature_info(void *h, struct_amdsmi_ras_feature_t *r) {
    ENTER(h, g);
    NEED(r);
    memset(r, 0, sizeof *r);
    r->ras_eeprom_version = g->ras_eeprom_version;
    r->ecc_correction_schema_flag = g->ras_schema;
    return AMDSMI_STATUS_SUCCESS;
}

static uint32_t sim_pages(const sim_gpu_t *g, uint32_t *n, struct_amdsmi_retired_page_record_t *rec) {
    NEED(n);
    if (!rec) {
        *n = g->n_bad_pages;
        return AMDSMI_STATUS_SUCCESS;
    }
    uint32_t k = *n < g->n_bad_pages ? *n : g->n_bad_pages;
    for (uint32_t i = 0; i < k; i++) {
        memset(&rec[i], 0, sizeof rec[i]);
        rec[i].page_address = g->bad_pages[i].address;
        rec[i].page_size = g->bad_pages[i].size;
        rec[i].status = g->bad_pages[i].status;
    }
    *n = k;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_bad_page_info(void *h, uint32_t *n, struct_amdsmi_retired_page_record_t *rec) {
    ENTER(h, g);
    return sim_pages(g, n, rec);
}

uint32_t amdsmi_get_gpu_memory_reserved_pages(void *h, uint32_t *n,
                                              struct_amdsmi_retired_page_record_t *rec) {
    ENTER(h, g);
    return sim_pages(g, n, rec);
}

uint32_t amdsmi_get_gpu_bad_page_threshold(void *h, uint32_t *threshold) {
    ENTER(h, g);
    NEED(threshold);
    /* ROCm reads debugfs .../ras/bad_page_cnt_threshold; the open fails without root -> NOT_SUPPORTED */
    if (!sim_privileged()) return AMDSMI_STATUS_NOT_SUPPORTED;
    *threshold = g->bad_page_threshold;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_cper_entries(void *h, uint32_t severity_mask, char *buf, uint64_t *buf_size,
                                     struct_amdsmi_cper_hdr_t **hdrs, uint64_t *entry_count,
                                     uint64_t *cursor) {
    ENTER(h, g);
    NEED(buf && buf_size && hdrs && entry_count && cursor);
    /* CPER records come from the driver's debugfs ring: without root -> NO_PERM, which
     * amd-smi's CLI reports as "This command requires elevation". */
    if (!sim_privileged()) return AMDSMI_STATUS_NO_PERM;
    uint64_t max_entries = *entry_count, used = 0, count = 0, i;
    uint32_t st = AMDSMI_STATUS_SUCCESS;
    for (i = *cursor; i < g->n_cper; i++) {
        const sim_cper_t *c = &g->cper[i];
        if (c->severity >= 32 || !(severity_mask & (1u << c->severity))) continue;
        if (count >= max_entries || used + sizeof(struct_amdsmi_cper_hdr_t) > *buf_size) {
            st = AMDSMI_STATUS_MORE_DATA;
            break;
        }
        struct_amdsmi_cper_hdr_t *r = (struct_amdsmi_cper_hdr_t *)(buf + used);
        memset(r, 0, sizeof *r);
        memcpy(r->signature, "CPER", 4);
        r->revision = 0x0100;
        r->signature_end = 0xFFFFFFFFu;
        r->sec_cnt = 0;
        r->error_severity = c->severity;
        r->cper_valid_bits.valid_mask = 0x2; /* timestamp valid */
        r->record_length = sizeof(struct_amdsmi_cper_hdr_t);
        r->timestamp.seconds = (uint8_t)c->seconds;
        r->timestamp.minutes = (uint8_t)c->minutes;
        r->timestamp.hours = (uint8_t)c->hours;
        r->timestamp.day = (uint8_t)c->day;
        r->timestamp.month = (uint8_t)c->month;
        r->timestamp.year = (uint8_t)(c->year % 100);
        r->timestamp.century = (uint8_t)(c->year / 100);
        sim_copy(r->platform_id, sizeof r->platform_id, "tuner-sim");
        sim_copy(r->creator_id, sizeof r->creator_id, "amdgpu");
        for (int b = 0; b < 8; b++) r->notify_type.b[b] = (uint8_t)(c->notify >> (8 * b));
        memcpy(r->record_id, c->record_id, strnlen(c->record_id, sizeof r->record_id));
        hdrs[count++] = r;
        used += sizeof(struct_amdsmi_cper_hdr_t);
    }
    *cursor = i;
    *entry_count = count;
    *buf_size = used;
    return st;
}

/* ------------------------------------------------------------------ PCIe / XGMI / topology */

uint32_t amdsmi_get_pcie_info(void *h, struct_amdsmi_pcie_info_t *p) {
    ENTER(h, g);
    NEED(p);
    memset(p, 0, sizeof *p);
    p->pcie_static.max_pcie_width = (uint16_t)g->pcie_max_width;
    p->pcie_static.max_pcie_speed = g->pcie_max_speed;
    p->pcie_static.pcie_interface_version = g->pcie_version;
    p->pcie_static.slot_type = g->pcie_slot_type;
    p->pcie_static.max_pcie_interface_version = g->pcie_max_version;
    p->pcie_metric.pcie_width = (uint16_t)g->pcie_width;
    p->pcie_metric.pcie_speed = g->pcie_speed;
    p->pcie_metric.pcie_bandwidth = g->pcie_bandwidth;
    p->pcie_metric.pcie_replay_count = g->pcie_replay;
    p->pcie_metric.pcie_l0_to_recovery_count = g->pcie_l0_recovery;
    p->pcie_metric.pcie_replay_roll_over_count = g->pcie_replay_rollover;
    p->pcie_metric.pcie_nak_sent_count = g->pcie_nak_sent;
    p->pcie_metric.pcie_nak_received_count = g->pcie_nak_received;
    p->pcie_metric.pcie_lc_perf_other_end_recovery_count = g->pcie_other_end_recovery;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_pci_replay_counter(void *h, uint64_t *count) {
    ENTER(h, g);
    NEED(count);
    *count = g->pcie_replay;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_xgmi_link_status(void *h, struct_amdsmi_xgmi_link_status_t *s) {
    ENTER(h, g);
    NEED(s);
    memset(s, 0, sizeof *s);
    /* ROCm: total_links = number of sockets (GPUs amdsmi enumerates), at most
     * AMDSMI_MAX_NUM_XGMI_LINKS; each status comes from gpu_metrics xgmi_link_status[]. */
    s->total_links = (uint32_t)g_num_sockets < SIM_MAX_LINKS ? (uint32_t)g_num_sockets : SIM_MAX_LINKS;
    for (uint32_t l = 0; l < s->total_links; l++) s->status[l] = sim_link(g, l);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_link_metrics(void *h, struct_amdsmi_link_metrics_t *m) {
    ENTER(h, g);
    NEED(m);
    memset(m, 0, sizeof *m);
    m->num_links = SIM_MAX_LINKS;
    for (uint32_t l = 0; l < SIM_MAX_LINKS; l++) {
        const sim_gpu_t *p = sim_link_peer(g, l);
        if (p) {
            sim_fill_bdf(p, &m->links[l].bdf);
        } else {
            memset(&m->links[l].bdf, 0xFF, sizeof m->links[l].bdf); /* no destination */
        }
        m->links[l].bit_rate = g->xgmi_bit_rate[l];
        m->links[l].max_bandwidth = g->xgmi_bit_rate[l] * g->xgmi_width[l];
        m->links[l].link_type = AMDSMI_LINK_TYPE_XGMI;
    }
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_gpu_xgmi_error_status(void *h, uint32_t *status) {
    ENTER(h, g);
    NEED(status);
    /* MI300/MI355: sysfs xgmi_error -> EINVAL -> AMDSMI_STATUS_INVAL (rocm-systems #11468) */
    if (g->xgmi_error_inval) return AMDSMI_STATUS_INVAL;
    *status = g->xgmi_error;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_reset_gpu_xgmi_error(void *h) {
    ENTER(h, g);
    g->xgmi_error = 0; /* until the next amdsmi_init re-reads the state file */
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_xgmi_info(void *h, struct_amdsmi_xgmi_info_t *x) {
    ENTER(h, g);
    NEED(x);
    memset(x, 0, sizeof *x);
    x->xgmi_lanes = (uint8_t)g->xgmi_lanes;
    x->xgmi_hive_id = g->xgmi_hive_id;
    x->xgmi_node_id = g->xgmi_node_id;
    x->index = g->xgmi_index;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_topo_get_link_type(void *a, void *b, uint64_t *hops, uint32_t *type) {
    ENTER(a, ga);
    NEED(hops && type);
    sim_gpu_t *gb = sim_gpu_from_handle(b);
    NEED(gb);
    if (ga == gb) {
        *hops = 0;
        *type = AMDSMI_LINK_TYPE_INTERNAL;
    } else if (ga->xgmi_hive_id && ga->xgmi_hive_id == gb->xgmi_hive_id) {
        *hops = 1;
        *type = AMDSMI_LINK_TYPE_XGMI;
    } else {
        *hops = ga->numa_node == gb->numa_node ? 2 : 3;
        *type = AMDSMI_LINK_TYPE_PCIE;
    }
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_topo_get_numa_node_number(void *h, uint32_t *numa) {
    ENTER(h, g);
    NEED(numa);
    *numa = (uint32_t)g->numa_node;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_topo_numa_affinity(void *h, int32_t *numa) {
    ENTER(h, g);
    NEED(numa);
    *numa = g->numa_node;
    return AMDSMI_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ memory, power */

uint32_t amdsmi_get_gpu_memory_total(void *h, uint32_t type, uint64_t *total) {
    ENTER(h, g);
    NEED(total);
    if (type != AMDSMI_MEM_TYPE_VRAM) return AMDSMI_STATUS_NOT_SUPPORTED;
    *total = g->vram_total;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_memory_usage(void *h, uint32_t type, uint64_t *used) {
    ENTER(h, g);
    NEED(used);
    if (type != AMDSMI_MEM_TYPE_VRAM) return AMDSMI_STATUS_NOT_SUPPORTED;
    uint64_t procs = 0;
    for (uint32_t i = 0; i < g->n_procs; i++) procs += g->procs[i].mem;
    *used = g->vram_used + procs;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_vram_info(void *h, struct_amdsmi_vram_info_t *v) {
    ENTER(h, g);
    NEED(v);
    memset(v, 0, sizeof *v);
    v->vram_type = AMDSMI_VRAM_TYPE_HBM3; /* amdsmi 7.0.2 has no HBM3E member */
    sim_copy(v->vram_vendor, sizeof v->vram_vendor, g->vram_vendor);
    v->vram_size = g->vram_total >> 20; /* MB */
    v->vram_bit_width = 8192;
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_power_cap_info(void *h, uint32_t sensor, struct_amdsmi_power_cap_info_t *p) {
    ENTER(h, g);
    NEED(p);
    if (sensor != 0) return AMDSMI_STATUS_NOT_SUPPORTED;
    memset(p, 0, sizeof *p);
    p->power_cap = g->power_cap;
    p->default_power_cap = g->power_cap_default;
    p->dpm_cap = 0;
    p->min_power_cap = g->power_cap_min;
    p->max_power_cap = g->power_cap_max;
    return AMDSMI_STATUS_SUCCESS;
}

/* amdsmi_get_gpu_activity: gfx/umc/mm busy percent (0xFFFF = N/A, as the library fills it) */
uint32_t amdsmi_get_gpu_activity(void *h, struct_amdsmi_engine_usage_t *u) {
    ENTER(h, g);
    NEED(u);
    memset(u, 0, sizeof *u);
    u->gfx_activity = g->act_gfx;
    u->umc_activity = g->act_umc;
    u->mm_activity = g->act_mm;
    return AMDSMI_STATUS_SUCCESS;
}

/* amdsmi_get_clock_info: current/min/max MHz; deep sleep when the clock is below its minimum
 * (amdsmi: clk_deep_sleep = current < min); a clock the GPU does not have: NOT_SUPPORTED */
uint32_t amdsmi_get_clock_info(void *h, uint32_t type, struct_amdsmi_clk_info_t *c) {
    ENTER(h, g);
    NEED(c);
    if (type >= SIM_CLK_TYPES || !g->clk_set[type]) return AMDSMI_STATUS_NOT_SUPPORTED;
    memset(c, 0, sizeof *c);
    c->clk = g->clk_cur[type];
    c->min_clk = g->clk_min[type];
    c->max_clk = g->clk_max[type];
    c->clk_locked = type == AMDSMI_CLK_TYPE_GFX ? 0 : 0xFF; /* only GFX reports a lock */
    c->clk_deep_sleep = g->clk_cur[type] < g->clk_min[type] ? 1 : 0;
    return AMDSMI_STATUS_SUCCESS;
}

/* amdsmi_get_power_info: socket power in W; MI300/MI355 fill current_socket_power, the
 * average and the voltages read N/A (0xFFFF) */
uint32_t amdsmi_get_power_info(void *h, struct_amdsmi_power_info_t *p) {
    ENTER(h, g);
    NEED(p);
    memset(p, 0, sizeof *p);
    p->current_socket_power = g->power_current;
    p->average_socket_power = g->power_average;
    p->socket_power = g->power_current != SIM_NA16 ? g->power_current : g->power_average;
    p->gfx_voltage = SIM_NA16;
    p->soc_voltage = SIM_NA16;
    p->mem_voltage = SIM_NA16;
    p->power_limit = (uint32_t)(g->power_cap / 1000000u);
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_perf_level(void *h, uint32_t *level) {
    ENTER(h, g);
    NEED(level);
    *level = g->perf_level;
    return AMDSMI_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ thermal, processes, metrics */

uint32_t amdsmi_get_temp_metric(void *h, uint32_t type, uint32_t metric, int64_t *value) {
    ENTER(h, g);
    NEED(value);
    if (type >= SIM_TEMP_TYPES || metric >= SIM_TEMP_METRICS || !g->temp_set[type][metric])
        return AMDSMI_STATUS_NOT_SUPPORTED;
    *value = g->temp[type][metric];
    return AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_process_list(void *h, uint32_t *n, struct_amdsmi_proc_info_t *list) {
    ENTER(h, g);
    NEED(n);
    if (!list) {
        *n = g->n_procs;
        return AMDSMI_STATUS_SUCCESS;
    }
    uint32_t k = *n < g->n_procs ? *n : g->n_procs;
    for (uint32_t i = 0; i < k; i++) {
        struct_amdsmi_proc_info_t *p = &list[i];
        memset(p, 0, sizeof *p);
        sim_copy(p->name, sizeof p->name, g->procs[i].name);
        p->pid = g->procs[i].pid;
        p->mem = g->procs[i].mem;
        p->memory_usage.vram_mem = g->procs[i].mem;
        p->cu_occupancy = g->procs[i].cu_occupancy;
    }
    uint32_t total = g->n_procs;
    *n = k;
    return k < total ? AMDSMI_STATUS_OUT_OF_RESOURCES : AMDSMI_STATUS_SUCCESS;
}

uint32_t amdsmi_get_gpu_metrics_info(void *h, struct_amdsmi_gpu_metrics_t *m) {
    ENTER(h, g);
    NEED(m);
    memset(m, 0xFF, sizeof *m); /* all-ones = "N/A" for every metric we do not simulate */
    m->common_header.structure_size = (uint16_t)sizeof *m;
    m->common_header.format_revision = 1;
    m->common_header.content_revision = 8;
    if (g->temp_set[AMDSMI_TEMPERATURE_TYPE_EDGE][AMDSMI_TEMP_CURRENT])
        m->temperature_edge = (uint16_t)g->temp[AMDSMI_TEMPERATURE_TYPE_EDGE][AMDSMI_TEMP_CURRENT];
    if (g->temp_set[AMDSMI_TEMPERATURE_TYPE_HOTSPOT][AMDSMI_TEMP_CURRENT])
        m->temperature_hotspot = (uint16_t)g->temp[AMDSMI_TEMPERATURE_TYPE_HOTSPOT][AMDSMI_TEMP_CURRENT];
    if (g->temp_set[AMDSMI_TEMPERATURE_TYPE_VRAM][AMDSMI_TEMP_CURRENT])
        m->temperature_mem = (uint16_t)g->temp[AMDSMI_TEMPERATURE_TYPE_VRAM][AMDSMI_TEMP_CURRENT];
    m->pcie_link_width = (uint16_t)g->pcie_width;
    m->pcie_link_speed = (uint16_t)(g->pcie_speed / 100); /* 0.1 GT/s units */
    m->pcie_replay_count_acc = g->pcie_replay;
    m->pcie_l0_to_recov_count_acc = g->pcie_l0_recovery;
    m->pcie_replay_rover_count_acc = g->pcie_replay_rollover;
    m->pcie_nak_sent_count_acc = (uint32_t)g->pcie_nak_sent;
    m->pcie_nak_rcvd_count_acc = (uint32_t)g->pcie_nak_received;
    m->num_partition = (uint16_t)g->num_partition;
    m->average_gfx_activity = (uint16_t)g->act_gfx;
    m->average_umc_activity = (uint16_t)g->act_umc;
    m->average_mm_activity = (uint16_t)g->act_mm;
    m->current_socket_power = (uint16_t)g->power_current;
    m->average_socket_power = (uint16_t)g->power_average;
    if (g->clk_set[AMDSMI_CLK_TYPE_GFX]) m->current_gfxclk = (uint16_t)g->clk_cur[AMDSMI_CLK_TYPE_GFX];
    if (g->clk_set[AMDSMI_CLK_TYPE_MEM]) m->current_uclk = (uint16_t)g->clk_cur[AMDSMI_CLK_TYPE_MEM];
    m->xgmi_link_width = (uint16_t)g->xgmi_width[0];
    m->xgmi_link_speed = (uint16_t)g->xgmi_bit_rate[0];
    m->throttle_status = (uint32_t)g->throttle_status;
    m->indep_throttle_status = g->throttle_status;
    for (uint32_t l = 0; l < SIM_MAX_LINKS; l++) {
        uint32_t st = sim_link(g, l);
        m->xgmi_link_status[l] = st == AMDSMI_XGMI_LINK_UP ? 1 : st == AMDSMI_XGMI_LINK_DOWN ? 0 : 0xFFFF;
    }
    return AMDSMI_STATUS_SUCCESS;
}
