"""Synthetic surge comments: thousands of comments under one viral @kemensosri post.

`surge_comments(n, seed)` returns (text, kind) pairs, deterministic for a seed. Kinds:

- "cair":   social aid (PKH, BPNT, BLT, ...) not paid yet, paid late, balance still empty;
- "data":   name dropped from DTKS, NIK not registered, rejected at cekbansos, data wrong;
- "pungli": officers, village staff or agents cutting the aid, asking for money, holding cards;
- "noise":  praise, jokes, politics, emoji only, gambling promotions, tagged friends.

The mix is about 30/30/20/20. Every template below was written for these tests (none is taken
from a data set). Templates mention the same programmes, places and polite openers across
kinds, and the texts are roughened (slang spellings, stretched letters, typos, case, emoji,
padding about the writer's life) so that grouping them takes more than string matching.

Each kind is one grievance that one answer could serve, and most of its texts name it in one
of a few ways ("belum cair", "tidak terdaftar di DTKS", "dipotong"), as people under one post
do. A kind made of several different grievances (an e-warong forcing a package, a name
misspelt on the card, ...) is rightly split by any grouping and cannot score 0.8 against the
kind: an earlier draft of these templates like that scored an ARI of about 0.4.

`score_groups` is the measure the tests and tests/bench/bench_grouping.py share.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Sequence

KINDS = ("cair", "data", "pungli", "noise")
WEIGHTS = (0.30, 0.30, 0.20, 0.20)

AID = ["PKH", "BPNT", "BLT", "bansos", "sembako", "bantuan", "BST", "bansos PKH", "BLT BBM", "bantuan sembako"]
REGION = ["Kab. Bogor", "Garut", "Cianjur", "Tasikmalaya", "Brebes", "Grobogan", "Jember", "Bangkalan", "Lombok Timur",
          "Kupang", "Makassar", "Gowa", "Medan", "Deli Serdang", "Palembang", "Lampung Tengah", "Pontianak",
          "Banjarmasin", "Ambon", "Jayapura", "Kendari", "Sumba Barat", "Indramayu", "Karawang", "Sampang", "Nias"]
MONTH = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
         "November", "Desember", "awal tahun", "lebaran kemarin"]
OFFICER = ["pendamping", "pendamping PKH", "ketua RT", "pak RT", "kades", "perangkat desa", "kadus", "ketua kelompok",
           "operator desa", "petugas pos", "agen", "agen e-warong", "aparat desa", "oknum petugas"]
STAGE = ["1", "2", "3", "4", "pertama", "kedua", "ketiga", "terakhir"]
AMOUNT = ["20rb", "25 ribu", "50rb", "50.000", "100 ribu", "100rb", "150rb", "200 ribu", "300rb", "Rp 50.000"]

# --- complaints -------------------------------------------------------------------------------
# Each kind is one complaint that one answer could serve, as in a real surge: people under the
# same post repeat the same grievance in their own words (and copy each other's key terms).

# The aid has not been paid, or is late: "when will it be paid?"
CAIR = [
    "{aid} tahap {stage} belum cair juga min, padahal tetangga sudah pada cair",
    "Min {aid} bulan {month} kapan cairnya? sudah 3 bulan gak masuk ke KKS",
    "saya penerima {aid} di {region} sampai sekarang belum ada pencairan, tolong dicek",
    "Kapan cair min? anak2 butuh biaya sekolah",
    "saldo KKS masih kosong, katanya cair tanggal 15 tapi belum cair sampai sekarang",
    "sudah bolak balik ke kantor pos, {aid} belum juga cair. capek min",
    "{aid} saya terakhir cair bulan {month}, habis itu tidak pernah cair lagi",
    "bantuan sembako BPNT di desa kami telat terus cairnya, sudah 3 bulan belum masuk",
    "cek saldo di ATM BRI cuma 0, padahal statusnya sudah SP2D tapi belum cair",
    "Kenapa pencairan {aid} tahap {stage} lama banget? orang lain sudah cair",
    "Katanya cair serentak, mana buktinya? di {region} belum ada yang cair",
    "pencairan {aid} saya tertunda terus, tiap tanya jawabnya tunggu aja tunggu aja",
    "BPNT kami belum cair sejak {month}, mau beli beras pakai apa min",
    "dana {aid} untuk lansia di rumah belum cair, padahal beliau sakit",
    "pencairan {aid} lewat pos di kecamatan ditunda tanpa kabar, kapan dicairkan?",
    "Sampai kapan kami harus menunggu? bantuan yang dijanjikan belum juga cair",
    "KKS saya sudah diaktifkan tapi dananya belum cair sampai sekarang",
    "jadwal pencairan {aid} bulan {month} kapan ya min? kok belum ada info",
    "Bantuan yatim piatu anak saya belum cair sudah setengah tahun",
    "masih nunggu {aid} cair, katanya minggu ini cair ternyata zonk lagi",
    "Tiap bulan dijanjikan cair, tiap bulan juga saldo kosong. kasihan ibu saya",
    "Uang {aid} kok belum cair ya? Status di aplikasi masih proses bank",
    "mohon percepat pencairan {aid}, warga {region} sudah menunggu dari {month}",
    "Saya cek di ATM Mandiri saldo KKS belum bertambah, {aid} belum cair sama sekali",
    "PKH komponen anak sekolah belum dicairkan, padahal tahun ajaran baru sudah mulai",
    "kenapa di daerah kami bantuan telat terus cairnya, selalu paling akhir",
    "Katanya sudah ditransfer, tapi rekening kosong, {aid} belum cair. uangnya kemana?",
    "Kapan {aid} cair lagi min, terakhir cair {month}",
    "{aid} blm cair jg min",
    "belum cair juga min",
    "kapan cair bpnt nya min",
    "sudah tiga tahap {aid} kami tidak cair, uangnya nyangkut dimana",
    "tetangga sebelah sudah ambil di pos, saya belum dapat undangan pencairan",
    "cairnya molor terus dari jadwal, kami cuma bisa nunggu",
    "min {aid} tahap ini cair kapan? di {region} belum ada yang terima",
]

# The name or NIK is not (or no longer) in DTKS, or cekbansos rejects it: "how do I get registered?"
DATA = [
    "Nama saya hilang dari DTKS padahal tahun lalu masih dapat {aid}",
    "cek di cekbansos NIK saya tidak terdaftar, gimana caranya daftar min?",
    "NIK saya katanya tidak terdaftar di data, padahal KTP asli {region}",
    "sudah daftar lewat aplikasi cek bansos tapi statusnya ditolak, tidak masuk DTKS",
    "Kenapa orang mampu malah terdata, kami yang miskin tidak masuk DTKS?",
    "Data ibu saya dicoret dari DTKS, alasannya NIK tidak padan dengan dukcapil",
    "Usulan dari desa sudah diajukan sejak {month} tapi nama belum muncul di DTKS",
    "Hasil cek bansos: tidak terdapat peserta. padahal saya layak, kenapa tidak terdaftar?",
    "Saya dinyatakan meninggal di data DTKS, padahal masih hidup",
    "Gimana cara update data DTKS? KK saya sudah pecah tapi data masih yang lama",
    "desil di data naik jadi 6 padahal rumah masih gubuk, nama dicoret dari DTKS",
    "tolong dicek NIK saya ditolak terus pas daftar usulan DTKS di aplikasi",
    "nama saya tiba2 tidak ada di data penerima, operator desa bilang dari pusat",
    "Sudah lapor ke dinsos {region} soal data DTKS ganda tapi tidak ada tindak lanjut",
    "Kenapa status di cekbansos tidak memenuhi syarat? sudah disurvei tapi usulan DTKS ditolak",
    "mohon verifikasi ulang data DTKS di desa kami, banyak yang tidak terdata",
    "Nomor KK saya tidak sinkron di cekbansos, data tidak ditemukan, disuruh ke capil katanya",
    "ditolak di cekbansos dengan alasan data sudah terima bantuan lain, padahal tidak pernah dapat",
    "Data DTKS di kelurahan tidak pernah diperbarui, yang sudah pindah masih terdata",
    "Ibu saya janda lansia tapi tidak terdaftar di DTKS, sudah usul dua kali ditolak",
    "cara sanggah hasil cek bansos gimana? NIK dibilang tidak valid, tidak terdaftar",
    "setelah pemutakhiran data DTKS nama kami hilang, padahal kondisi ekonomi sama saja",
    "Mau daftar DTKS lewat RT katanya kuota penuh, apa benar ada kuota?",
    "daftar usulan DTKS sendiri di aplikasi, foto rumah sudah diupload, data masih menunggu verifikasi",
    "kartu BPJS PBI saya dinonaktifkan karena katanya data saya tidak ada di DTKS",
    "kok bisa NIK suami saya terdata di kabupaten lain? kami tinggal di {region}",
    "nama di data DTKS salah ketik, beda dengan KTP, tolong diperbaiki",
    "NIK saya tidak terdaftar",
    "nama saya dicoret dari dtks",
    "cekbansos: data ditolak terus min",
    "kenapa data kami dihapus dari DTKS tanpa pemberitahuan",
    "NIK anak saya belum terdaftar di KK yang terdata, jadi tidak masuk data",
    "keluarga kami sudah disurvei petugas tapi tidak pernah terdaftar di DTKS",
    "di cekbansos tulisannya data proses verifikasi dari {month} sampai sekarang belum berubah",
]

# Someone cuts the aid or asks money for it: "is this allowed, where do we report it?"
PUNGLI = [
    "{officer} di desa kami minta potongan {amount} tiap pencairan",
    "di e-warong saldo BPNT kami dipotong, sembako yang dikasih cuma separuh nilainya",
    "{officer} minta uang rokok {amount} tiap orang yang dapat bansos, ini pungli kan min?",
    "Laporkan min, oknum kades di {region} motong {aid} alasannya buat pemerataan",
    "Uang bansos dipotong {amount} sama petugas, katanya buat biaya administrasi",
    "KKS kami dipegang sama {officer}, uangnya dipotong dulu baru dikasih",
    "Tolong usut pungli penyaluran bantuan di {region}, tiap warga dipungut {amount}",
    "BPNT harusnya 200rb, yang kami terima cuma 150rb, dipotong sisanya kemana",
    "Kalau mau namanya masuk daftar penerima harus bayar dulu ke {officer}, itu pungli",
    "KKS dan PIN warga ditahan agen, uang bantuan dipotong dulu baru dikasih",
    "Pungutan liar bansos di kampung saya sudah jadi rahasia umum, tidak ada yang berani lapor",
    "petugas pos minta uang terima kasih pas ambil {aid}, kalau tidak ngasih dipersulit",
    "Saya diancam tidak dapat lagi kalau tidak mau setor potongan {amount} ke {officer}",
    "oknum {officer} sunat dana {aid}, potongannya {amount}, lapor kemana min yang aman?",
    "bantuan dibagi rata sama kadus padahal itu hak kami, uangnya dipotong separuh",
    "Dana bantuan kami dipotong {officer} buat beli beras di warungnya, kalau nolak kartunya diambil",
    "ada potongan {amount} buat kas kelompok tiap cair, resmi gak sih?",
    "Dana bansos kami dipotong untuk bayar fotokopi dan transport petugas",
    "Agen BRILink di desa motong {amount} tiap pencairan bansos",
    "saldo BPNT dipotong agen e-warong {amount}, katanya biaya admin, itu pungli kan",
    "Kemensos harus tindak tegas {officer} nakal yang minta jatah dari uang bansos warga",
    "Tiap pencairan kami disuruh setor uang {amount} buat syukuran {officer}",
    "Ada oknum ngaku dari dinsos minta uang {amount} biar bantuan cepat, pungli ini",
    "{aid} tunai disunat aparat desa, warga takut protes karena diancam",
    "Mau ambil {aid} di kantor desa diminta setor wajib {amount}, pungutan apa ini",
    "{officer} minta uang bensin {amount} tiap pencairan, kalau tidak dikasih dipersulit",
    "pungli {aid} di {region}",
    "dipotong {amount} sama {officer}",
    "stop pungli bansos min!",
    "uang kami dipotong tanpa alasan, tiap cair pasti kurang {amount}",
    "yang nyalurin bantuan di {region} minta jatah {amount}, kalau protes diancam",
    "Lapor min, ketua kelompok {aid} motong uang anggota {amount} per orang",
    "bantuan kami selalu kena potongan, katanya buat uang lelah {officer}",
]

# --- noise -----------------------------------------------------------------------------------
NOISE = [
    # praise and prayers
    "Terima kasih kemensos, semoga makin amanah",
    "Mantap bu menteri, sehat selalu",
    "keren programnya, lanjutkan",
    "Semangat terus untuk para pendamping di lapangan",
    "Alhamdulillah sangat membantu warga kecil",
    "semoga berkah untuk semua",
    "Amin ya Allah",
    "Salut sama pak mensos, turun langsung ke lapangan",
    # jokes and chatter
    "yang dapet bansos traktir dong wkwk",
    "kapan aku dapet bansos cinta",
    "min follback dong",
    "pertamax",
    "nyimak aja",
    "hadir min",
    "lucu banget videonya, itu bapaknya ekspresinya wkwkwk",
    "komen di sini biar rame",
    # politics
    "Ini pasti pencitraan menjelang pemilu",
    "tiap mau pilkada baru rajin bagi bagi, habis itu hilang",
    "partai mana nih yang nempel stiker di beras",
    "rakyat jangan mau dibodohi terus",
    "negara ini butuh lapangan kerja bukan dikasih ikan terus",
    "Menteri sebelumnya lebih bagus kerjanya",
    # gambling promotions
    "Cari cuan tambahan? main di SLOT88 gacor hari ini, link di bio",
    "Situs terpercaya deposit 10rb WD berapapun pasti dibayar, cek bio",
    "MAXWIN terus di JP99 bosku",
    "gabung sekarang bonus new member 100%, klik bit.ly/gacor-jp",
    "Modal receh jadi jutaan, main di situs kami aman dan terpercaya",
    # tags
    "@sari_lestari @budi.santoso liat nih",
    "@mamah.dedeh93 coba cek",
    "@rina_w @dodi_kurniawan @pakde.joko",
    "@ujang_sunda ieu geuning",
]
EMOJI_ONLY = ["🙏🙏🙏", "😂😂", "👍", "🔥🔥🔥", "❤️❤️", "😭😭😭", "👏👏", "🤲", "😡😡😡"]

# --- fillers ---------------------------------------------------------------------------------
OPENERS = ["", "", "", "", "Min, ", "Admin, ", "Assalamualaikum min, ", "Permisi kak admin, ", "Halo min ",
           "Pak Menteri, ", "@kemensosri ", "Mohon maaf min, ", "Yth. Kemensos, ", "Bu, ", "min mau tanya ",
           "Punten min, ", "Tabe min, ", "Mohon izin bertanya, ", "kak ", "Pak, "]
CLOSERS = ["", "", "", "", " Terima kasih", " mohon dibantu", " tolong dibalas min", " 🙏", " 😭😭", " 🙏🙏",
           " #kemensos", " - warga {region}", " dari {region}", " tolong atuh min", " sudah lama mi ini",
           " gimana ini bah", " kami tunggu jawabannya", " mohon ditindaklanjuti", " makasih min", " 😡",
           " respon dong min", " jangan diam saja"]
# The writer's situation: padding shared by every kind, as in real long comments.
LIFE = ["saya ibu rumah tangga, suami kerja serabutan.", "anak saya tiga masih sekolah semua.",
        "kami tinggal di rumah kontrakan kecil.", "suami saya sudah meninggal dua tahun lalu.",
        "saya buruh tani penghasilan tidak menentu.", "orang tua saya sudah lansia dan sakit sakitan.",
        "sejak pandemi saya kena PHK dan belum dapat kerja.", "kami keluarga miskin di {region}.",
        "sudah tanya ke desa tapi disuruh sabar terus.", "hidup sekarang serba susah, harga beras naik terus."]
SLANG = {"belum": ["blm", "belom", "blom"], "sudah": ["udh", "udah", "sdh", "dah"], "tidak": ["gak", "ga", "tdk", "nggak", "gk"],
         "yang": ["yg"], "saya": ["sy", "aku", "sya"], "dengan": ["dgn", "sama"], "sampai": ["sampe", "smpe"],
         "tolong": ["tlg"], "kapan": ["kpn"], "karena": ["krn", "soalnya"],
         "terima kasih": ["makasih", "trims", "tq"], "gimana": ["gmn", "bagaimana"], "kenapa": ["knp", "kok"]}
EMOJI = ["😭", "🙏", "😡", "😢", "🥺", "😤", "🙏🏻", "😔"]


def _fill(template: str, rng: random.Random) -> str:
    slots = {"aid": AID, "region": REGION, "month": MONTH, "officer": OFFICER, "stage": STAGE, "amount": AMOUNT}
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(slots[m.group(1)]), template)


def _roughen(text: str, rng: random.Random) -> str:
    """Slang spellings, a stretched word, a dropped letter, and the case people type in."""
    for word, alternatives in SLANG.items():
        if word in text.lower() and rng.random() < 0.5:
            text = re.sub(rf"\b{word}\b", rng.choice(alternatives), text, count=1, flags=re.IGNORECASE)
    words = text.split(" ")
    if len(words) > 3 and rng.random() < 0.3:  # "lamaaa", "cairrr"
        i = rng.randrange(len(words))
        if words[i][-1:].isalpha():
            words[i] += words[i][-1] * rng.randint(2, 4)
    if len(words) > 3 and rng.random() < 0.2:  # a typo: one letter dropped
        i = rng.randrange(len(words))
        if len(words[i]) > 4 and words[i].isalpha():
            j = rng.randrange(1, len(words[i]) - 1)
            words[i] = words[i][:j] + words[i][j + 1:]
    text = " ".join(words)
    case = rng.random()
    if case < 0.35:
        text = text.lower()
    elif case < 0.42:
        text = text.upper()
    elif case < 0.5:
        text = text[:1].upper() + text[1:]
    return text


def _complaint(templates: list[str], rng: random.Random) -> str:
    core = _fill(rng.choice(templates), rng)
    parts = [_fill(rng.choice(OPENERS), rng)]
    if rng.random() < 0.3:
        parts.append(_fill(rng.choice(LIFE), rng) + " ")
    parts.append(core)
    if rng.random() < 0.15:
        parts.append(". " + _fill(rng.choice(LIFE), rng))
    parts.append(_fill(rng.choice(CLOSERS), rng))
    if rng.random() < 0.25:
        parts.append(" " + rng.choice(EMOJI) * rng.randint(1, 3))
    text = _roughen("".join(parts).strip(), rng)
    words = text.split()
    return " ".join(words[:40])


def _noise(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return rng.choice(EMOJI_ONLY)
    text = rng.choice(NOISE)
    if rng.random() < 0.3:
        text += " " + rng.choice(["😂", "🙏", "👍👍", "🤣🤣", "❤️", "💰💰", "🔥"])
    return _roughen(text, rng) if not text.startswith("@") else text


def surge_comments(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n (text, kind) pairs under one viral post; the same n and seed give the same list."""
    rng = random.Random(seed)
    out = []
    for kind in rng.choices(KINDS, weights=WEIGHTS, k=n):
        if kind == "noise":
            out.append((_noise(rng), kind))
        else:
            out.append((_complaint({"cair": CAIR, "data": DATA, "pungli": PUNGLI}[kind], rng), kind))
    return out


def score_groups(kinds: Sequence[str], groups: Sequence[Sequence[int]]) -> dict[str, float]:
    """How well groups (row indices, as bot.grouping.new_groups returns them) recover the kinds.

    ari: adjusted Rand index over all rows, the rows in no group counted as one more cluster,
      "ungrouped". Noise belongs there, so the measure rewards leaving noise out and penalises
      both complaints left out and kinds mixed or split. (Measured on grouped rows alone, it
      would reward a grouping that kept only its easiest texts.)
    purity: of the grouped rows, the share whose kind is their group's commonest kind.
    coverage: of the complaint rows (kind other than "noise"), the share in some group.
    """
    from sklearn.metrics import adjusted_rand_score

    predicted = [-1] * len(kinds)
    for number, rows in enumerate(groups):
        for row in rows:
            predicted[row] = number
    grouped = sum(len(rows) for rows in groups)
    majority = sum(Counter(kinds[row] for row in rows).most_common(1)[0][1] for rows in groups if rows)
    complaints = [row for row, kind in enumerate(kinds) if kind != "noise"]
    return {
        "ari": float(adjusted_rand_score(list(kinds), predicted)) if kinds else 1.0,
        "purity": majority / grouped if grouped else 0.0,
        "coverage": sum(predicted[row] >= 0 for row in complaints) / len(complaints) if complaints else 0.0,
    }


def majority_kind(kinds: Sequence[str], rows: Sequence[int]) -> str:
    return Counter(kinds[row] for row in rows).most_common(1)[0][0]


if __name__ == "__main__":  # a look at the texts: python -m tests.surge_texts
    for text, kind in surge_comments(40, seed=3):
        print(f"{kind:7} {text}")
