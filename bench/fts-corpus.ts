/**
 * The corpus of the `fts` benchmark: mixed Japanese/English chat messages drawn from a
 * fixed-seed, Zipf-distributed vocabulary of real words, plus the ground truth a search over it
 * is judged by (SPEC §5): whole-word, case-insensitive token match for Latin terms and substring
 * match for CJK terms, computed by scanning the generated text — independently of Kura's tokenizer.
 *
 * Japanese messages are written as Japanese is: content words joined by particles and a
 * predicate, no spaces between words; mixed messages put English words (with or without spaces)
 * into Japanese sentences.
 */

/** mulberry32: a small, fast, seedable 32-bit PRNG; `next()` is uniform in [0, 1). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}

/**
 * Draws items by rank r = 1…n with P(r) ∝ 1 / (r + q)^s: Zipf's law, with Mandelbrot's rank
 * offset q (default 0) that flattens the head as in real word counts.
 */
export class Zipf<T> {
  private readonly cdf: Float64Array;
  constructor(
    private readonly items: readonly T[],
    s: number,
    q = 0,
  ) {
    this.cdf = new Float64Array(items.length);
    let sum = 0;
    for (let r = 0; r < items.length; r++) {
      sum += 1 / (r + 1 + q) ** s;
      this.cdf[r] = sum;
    }
    for (let r = 0; r < items.length; r++) this.cdf[r] = (this.cdf[r] as number) / sum;
  }
  draw(rng: Rng): T {
    const u = rng.next();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return this.items[lo] as T;
  }
}

const words = (s: string) => [...new Set(s.split(/\s+/).filter(Boolean))];

/** English, roughly by frequency in everyday and work chat. */
export const EN_WORDS = words(`
the to and a of i you it is in for that we on this be with have are at can will do not so
but if what my your me just get all about was there from they know one up out like can as
time please think now an or need today how when new go by our work some let more here
team meeting should would could make see any also check tomorrow yes no good thanks update
back want did which been call then only them take use still look send were way sure well
going really next week has right after before first over into because help day other
file issue ok fix test build code review people data change email project plan thing
question report morning last doc note find read start done think give something great
call order user server release deploy branch merge version support customer price product
sales client office lunch home since very same much many most through again while where
why who same long little both each those these few around between under never always often
maybe already soon later early late yesterday tonight hour minute second month year monday
tuesday wednesday thursday friday saturday sunday weekend holiday schedule agenda notes slides
deck draft final budget cost invoice payment contract account password login access error bug
crash log logs alert incident outage network database backup cache queue service api endpoint
request response client browser app mobile screen page button link image video audio camera
phone number address name list table chart graph result results metric metrics goal target
task tasks ticket tickets sprint backlog roadmap feature features design designs spec specs
document documents folder share shared upload download install upgrade config setting settings
option options default value values field fields column row rows query search index filter
sort page pages item items cart shop store stock delivery shipping package box label tag tags
travel flight hotel train station airport taxi car bus bike walk road street city town map
weather rain snow wind sun cloud storm cold hot warm cool spring summer autumn winter season
coffee tea water beer wine food dinner breakfast snack pizza sushi ramen rice bread cake fruit
apple orange banana lemon salad soup chicken beef pork fish egg milk cheese butter sugar salt
family friend friends parent parents mother father brother sister child children kid kids baby
school class teacher student students lesson homework exam grade university college library
doctor hospital clinic medicine health sick fever cough sleep tired rest gym run running exercise
music song songs movie movies book books game games sport sports football baseball tennis soccer
photo photos picture pictures art paint draw write writing story stories news paper magazine
money bank card cash tax taxes salary bonus rent loan fund stock market trade deal offer
company manager director engineer designer developer intern staff member members partner vendor
supplier market brand campaign launch event events conference workshop webinar training session
interview hiring candidate resume offer onboarding feedback survey review reviews rating score
problem problems solution answer answers reason idea ideas plan plans step steps process flow
status progress deadline priority risk risks scope estimate timeline milestone quarter annual
monthly weekly daily hourly online offline remote onsite local global public private secure
quick slow fast easy hard simple complex clear open closed ready busy free available full empty
big small large tiny huge short high low top bottom left middle front side inside outside
happy sad glad sorry excited worried calm angry funny strange normal special important urgent
correct wrong true false real fake exact rough final initial current previous recent old young
red blue green yellow black white gray purple pink brown gold silver dark light bright
table chair desk door window room floor wall roof kitchen garden garage house apartment building
river lake sea ocean beach island mountain hill forest tree trees flower flowers grass stone
dog cat bird horse cow fish bear fox rabbit mouse lion tiger monkey panda whale dolphin
keyboard monitor laptop tablet printer charger cable battery speaker headset microphone webcam
cloud storage bucket object blob stream socket thread process memory disk cpu latency throughput
kubernetes docker container cluster node pod image registry pipeline runner job jobs cron
python java rust golang typescript javascript sql postgres redis kafka linux windows macos
github gitlab jira slack zoom teams notion figma excel word powerpoint outlook gmail calendar
tokyo osaka kyoto nagoya yokohama sapporo fukuoka kobe sendai hiroshima okinawa japan london
paris berlin seoul taipei singapore sydney toronto boston chicago seattle austin denver miami
agree disagree accept reject approve approved decline cancel cancelled confirm confirmed move
moved add added remove removed delete deleted create created edit edited save saved load loaded
open opened close closed finish finished begin began continue stop stopped wait waited pay paid
buy bought sell sold ship shipped print printed sign signed join joined leave left meet met
bring brought carry keep kept hold held turn turned show showed try tried ask asked tell told
learn learned teach taught explain explained discuss discussed mention mentioned suggest suggested
prefer preferred expect expected hope hoped plan planned forget forgot remember remembered
notice noticed handle handled manage managed organize organized prepare prepared arrange arranged
compare compared measure measured improve improved reduce reduced increase increased drop dropped
migrate migrated rollback rolled patch patched refactor refactored benchmark benchmarks profile
encrypt encrypted decrypt signature certificate token tokens secret secrets policy policies
audit compliance privacy security firewall proxy gateway router switch bandwidth packet
invoice receipt refund discount coupon subscription license renewal trial plan tier quota limit
agenda minutes summary recap outline proposal estimate quote forecast revenue profit margin
kanban standup retro demo prototype mockup wireframe sketch layout theme font icon logo color
umbrella jacket shoes shirt hat bag wallet key keys glasses watch ring gift present party
birthday anniversary wedding festival concert ticket museum park zoo aquarium temple shrine
castle garden bridge tower station platform subway express local ferry harbor port airport
noodle curry tempura udon soba bento onigiri miso tofu matcha sake whisky juice soda cookie
chocolate candy dessert icecream pancake waffle sandwich burger fries steak pasta noodles
quiet loud clean dirty cheap expensive heavy fresh ripe spicy sweet sour bitter salty
`);

/** Japanese one-character words (kanji nouns), roughly by frequency. */
export const JA_WORDS_1 = words(`
雨 人 日 車 本 水 店 駅 家 道 金 手 話 先 今 前 後 朝 夜 猫 犬 山 川 海 空 花 木 雪 風
声 色 音 絵 歌 夢 心 頭 顔 目 耳 口 足 指 肉 米 茶 酒 塩 卵 魚 鳥 馬 牛 虫 紙 箱 窓 門 橋
町 村 国 島 池 庭 城 寺 船 傘 靴 服 鍵 机 席 棚 床 壁 皿 鍋 糸 布 薬 熱 咳 汗 涙 息 力 命
愛 恋 嘘 罪 謎 技 株 税 層 波 砂 泥 氷 霧 雷 嵐 虹 炎 煙 鏡 針 釘 綿 絹 袋 札 票 枠 表 図
案 策 件 額 率 量 値 差 点 線 面 型 版 欄 桜 梅 竹 松 菊 熊 旅 星 光 昼 春 夏 秋 冬 森 草
石 鉄 銀 月 背 腰 胸 腕 髪 血 菓 湯 麦 豆 芋 柿 桃 栗 蛇 蟹 鯛 鮭 鰻 蕎 畑 岩 坂 丘 谷 滝
`);

/** Japanese two-character words (kanji compounds and kana words), roughly by frequency. */
export const JA_WORDS_2 = words(`
会議 確認 今日 明日 資料 予定 時間 仕事 会社 連絡 東京 対応 問題 質問 回答 報告 電話 大阪
準備 開発 設計 顧客 担当 部長 課長 社長 営業 経理 人事 総務 企画 提案 契約 請求 支払 納品
発注 見積 在庫 出荷 配送 品質 検査 試験 結果 原因 対策 改善 変更 修正 追加 削除 更新 登録
設定 環境 本番 障害 復旧 保守 運用 監視 通知 承認 申請 許可 共有 保存 送信 受信 返信 転送
添付 印刷 出張 休暇 有給 残業 勤務 出社 退社 在宅 面接 採用 研修 教育 評価 目標 実績 売上
利益 費用 予算 経費 精算 税金 給料 家賃 銀行 口座 振込 現金 電車 新宿 渋谷 池袋 品川 上野
横浜 京都 神戸 福岡 札幌 仙台 広島 沖縄 九州 関西 関東 日本 中国 韓国 台湾 世界 天気 晴れ
曇り 台風 地震 気温 季節 昨日 今週 来週 先週 今月 来月 先月 今年 来年 去年 毎日 毎週 午前
午後 夕方 週末 平日 休日 祝日 正月 年末 年始 食事 昼食 夕食 朝食 料理 野菜 果物 牛乳 紅茶
弁当 外食 家族 両親 父親 母親 兄弟 姉妹 子供 友達 先生 学生 生徒 学校 大学 授業 宿題 試合
選手 野球 音楽 映画 写真 動画 番組 新聞 雑誌 小説 漫画 趣味 旅行 温泉 観光 空港 病院 医者
薬局 風邪 体調 健康 運動 散歩 睡眠 部屋 建物 会場 受付 窓口 玄関 階段 自宅 住所 番号 名前
氏名 年齢 情報 内容 詳細 概要 資格 経験 能力 技術 知識 機能 性能 画面 操作 入力 出力 表示
検索 画像 文字 言語 翻訳 英語 単語 文章 意味 理由 目的 方法 手順 流れ 状況 状態 進捗 期限
締切 日程 調整 延期 中止 開始 終了 完了 継続 再開 参加 欠席 遅刻 早退 予約 注文 購入 返品
交換 割引 値段 料金 無料 有料 送料 商品 製品 部品 材料 工場 倉庫 店舗 本社 支店 部署 会長
専務 常務 係長 主任 新人 上司 部下 同僚 先輩 後輩 取引 相談 判断 決定 方針 戦略 計画 分析
調査 検討 議論 説明 紹介 案内 挨拶 感謝 謝罪 依頼 指示 命令 警告 注意 記録 履歴 集計 統計
数字 金額 合計 平均 割合 比較 傾向 予測 見込 成長 減少 増加 拡大 縮小 移動 移行 導入 廃止
公開 非公開 発表 販売 宣伝 広告 市場 業界 競合 他社 自社 弊社 御社 貴社 当社 メモ ペン バス
ガス ドア ビル パン ミス ログ バグ タブ ピザ ケア ここ そこ あれ これ それ どこ いつ まだ
もう すぐ よく 机上 雨天 晴天 雪国 山道 川辺 海外 国内 県内 市内 都内 駅前 店内 車内 社内
社外 室内 屋外 北口 南口 東口 西口 出口 入口 改札 線路 車両 座席 指定 自由 片道 往復 切符
`);

/** Japanese words of three or more characters, roughly by frequency. */
export const JA_WORDS_3 = words(`
打ち合わせ お願い ありがとう ございます よろしく 株式会社 お疲れ様 すみません 大丈夫 ミーティング
プロジェクト スケジュール 会議室 報告書 担当者 お客様 皆さん メール テスト リリース サーバー
データベース 新幹線 誕生日 月曜日 火曜日 水曜日 木曜日 金曜日 土曜日 日曜日 見積書 請求書
議事録 進捗状況 企画書 契約書 申請書 領収書 説明会 勉強会 懇親会 歓迎会 送別会 忘年会 新年会
展示会 記者会見 株主総会 取締役 代表取締役 責任者 管理者 利用者 参加者 関係者 開発者 皆様
もちろん 申し訳 明後日 一昨日 再来週 東京駅 大阪駅 新宿駅 渋谷駅 名古屋 北海道 鹿児島 神奈川
東京都 大阪府 京都府 富士山 美術館 博物館 水族館 動物園 遊園地 映画館 体育館 市役所 区役所
郵便局 警察署 消防署 交差点 信号機 高速道路 駐車場 駐輪場 地下鉄 山手線 中央線 乗り換え
待ち合わせ 問い合わせ 申し込み 締め切り 引き継ぎ 打ち上げ 立ち上げ 見積もり 振り込み 払い戻し
取り消し 手続き 人工知能 機械学習 情報処理 個人情報 著作権 知的財産 在宅勤務 働き方 残業代
有給休暇 年末年始 夏休み 冬休み 春休み 図書館 自動車 飛行機 冷蔵庫 携帯電話 電子レンジ
おはよう こんにちは こんばんは コーヒー デプロイ ログイン パスワード アカウント ユーザー システム
ネットワーク セキュリティ バックアップ アップデート インストール ダウンロード アップロード ファイル
フォルダ ドキュメント プレゼン スライド レポート エラー タスク チーム メンバー マネージャー
リーダー エンジニア デザイナー クライアント パートナー スタッフ アルバイト オフィス ホテル
レストラン カフェ コンビニ スーパー デパート タクシー チケット カレンダー メッセージ チャット
ビデオ オンライン オフライン リモート ランチ ディナー ビール ワイン ラーメン カレー サラダ ケーキ
アイス ジュース スマホ パソコン タブレット プリンター キーボード マウス モニター カメラ アプリ
ブラウザ サイト ページ リンク ボタン メニュー クラウド ストレージ サービス プラン コスト リスク
ルール ポリシー マニュアル ガイド 天気予報 梅雨入り 梅雨明け 大雨警報 花粉症 熱中症 新型 予防接種
健康診断 人間ドック 歯医者 眼科医 整体院 美容院 床屋 本屋 花屋 八百屋 魚屋 肉屋 酒屋 薬屋
お弁当 お土産 お菓子 お茶会 お花見 お正月 お盆休み 紅葉狩り 花火大会 夏祭り 盆踊り 運動会
文化祭 卒業式 入学式 結婚式 披露宴 同窓会 飲み会 女子会 合コン 二次会 送迎 送り迎え 子育て
保育園 幼稚園 小学校 中学校 高校生 大学生 社会人 新入社員 中途採用 内定者 転職活動 就職活動
確定申告 年末調整 源泉徴収 住民税 所得税 消費税 固定資産 減価償却 損益計算書 貸借対照表
`);

/** Particles and predicates: the function words that join Japanese content words. */
export const JA_PARTICLES = [
  "の",
  "は",
  "が",
  "を",
  "に",
  "で",
  "と",
  "も",
  "へ",
  "から",
  "まで",
  "より",
  "や",
];
export const JA_PREDICATES = [
  "です",
  "します",
  "ます",
  "しました",
  "でした",
  "ください",
  "お願いします",
  "ですか",
  "あります",
  "ありません",
  "できます",
  "なります",
  "しましょう",
  "ですね",
  "だよ",
  "かな",
  "思います",
  "確認中です",
  "しておきます",
  "いただけますか",
];
const PARTICLE_CHOICE = new Zipf(JA_PARTICLES, 0.9);
const PREDICATE_CHOICE = new Zipf(JA_PREDICATES, 1.0);

/**
 * All Japanese words in one rank order, each list spread from the top rank to the last: the
 * word at relative position x of its list gets the rank key x^skew, so a skew above 1 puts more
 * of the list near the head. One-character words get a skew below 1 because every kanji is also
 * found inside the compounds, so single kanji are common enough without holding the top ranks.
 */
function interleave(lists: ReadonlyArray<readonly [readonly string[], number]>): string[] {
  const keyed: Array<[number, string]> = [];
  for (const [list, skew] of lists) {
    list.forEach((w, j) => {
      keyed.push([((j + 0.5) / list.length) ** skew, w]);
    });
  }
  keyed.sort((a, b) => a[0] - b[0]);
  return [...new Set(keyed.map(([, w]) => w))];
}

export const JA_WORDS = interleave([
  [JA_WORDS_1, 0.5],
  [JA_WORDS_2, 1],
  [JA_WORDS_3, 1.4],
]);

export interface CorpusOptions {
  seed: number;
  /** Zipf exponent of word choice. */
  zipf: number;
  /** Mandelbrot's rank offset of word choice. */
  offset: number;
}

export const DEFAULT_CORPUS: CorpusOptions = { seed: 0x6b757261, zipf: 1.1, offset: 2 };

/** Generates `n` messages; the same options always give the same messages. */
export function* generateMessages(n: number, options: CorpusOptions = DEFAULT_CORPUS): Generator<string> {
  const rng = new Rng(options.seed);
  const en = new Zipf(EN_WORDS, options.zipf, options.offset);
  const ja = new Zipf(JA_WORDS, options.zipf, options.offset);
  const capitalize = (w: string) => (w[0] ?? "").toUpperCase() + w.slice(1);
  for (let i = 0; i < n; i++) {
    // ~5–30 tokens, shorter messages more common.
    const tokens = 5 + Math.floor(26 * rng.next() ** 1.6);
    const kind = rng.next();
    if (kind < 0.36) {
      const out: string[] = [];
      for (let t = 0; t < tokens; t++) {
        let w = en.draw(rng);
        if (t === 0 || rng.next() < 0.03) w = capitalize(w);
        else if (rng.next() < 0.01) w = w.toUpperCase();
        out.push(w);
        if (t < tokens - 1 && rng.next() < 0.06) out.push(",");
      }
      yield `${out.join(" ").replaceAll(" ,", ",")}${rng.pick([".", "", "?", "!", "."])}`;
    } else {
      // Japanese: content word + particle … predicate; in mixed messages some content words
      // are English, written with or without spaces around them.
      const mixed = kind >= 0.8;
      let s = "";
      const content = Math.max(2, Math.round(tokens * 0.6));
      for (let t = 0; t < content; t++) {
        if (mixed && rng.next() < 0.35) {
          const w = en.draw(rng);
          const cased = rng.next() < 0.3 ? capitalize(w) : w;
          s += rng.next() < 0.5 ? ` ${cased} ` : cased;
        } else s += ja.draw(rng);
        if (t < content - 1) {
          const r = rng.next();
          if (r < 0.75) s += PARTICLE_CHOICE.draw(rng);
          else if (r < 0.85) s += "、";
        }
      }
      s += PREDICATE_CHOICE.draw(rng);
      s += rng.pick(["。", "", "！", "？", "。"]);
      yield s.trim().replace(/ {2,}/g, " ");
    }
  }
}

// ---- Ground truth --------------------------------------------------------------------------

/** Characters a CJK term is made of; a CJK term can only occur inside a run of these. */
const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}ー々]/u;
const LATIN_SPLIT = /[^a-z0-9]+/;

export function isCjkTerm(term: string): boolean {
  return [...term].every((c) => CJK_CHAR.test(c));
}

/** Lower-cased whole words of Latin letters and digits. */
export function latinWords(text: string): string[] {
  return text.toLowerCase().split(LATIN_SPLIT).filter(Boolean);
}

/** The truth for one message: whole-word (case-insensitive) for Latin, substring for CJK. */
export function matches(text: string, term: string): boolean {
  return isCjkTerm(term) ? text.includes(term) : latinWords(text).includes(term.toLowerCase());
}

interface TrieNode {
  next: Map<number, TrieNode>;
  term: number;
}

/**
 * How many messages each term matches (same semantics as `matches`), in one pass over the
 * corpus: Latin terms by word lookup, CJK terms by walking a trie from every position.
 */
export function documentFrequencies(messages: readonly string[], terms: readonly string[]): Int32Array {
  const df = new Int32Array(terms.length);
  const lastSeen = new Int32Array(terms.length).fill(-1);
  const latin = new Map<string, number>();
  const root: TrieNode = { next: new Map(), term: -1 };
  terms.forEach((term, idx) => {
    if (!isCjkTerm(term)) {
      latin.set(term.toLowerCase(), idx);
      return;
    }
    let node = root;
    for (let i = 0; i < term.length; i++) {
      const c = term.charCodeAt(i);
      let child = node.next.get(c);
      if (!child) {
        child = { next: new Map(), term: -1 };
        node.next.set(c, child);
      }
      node = child;
    }
    node.term = idx;
  });
  const hit = (idx: number, m: number) => {
    if (lastSeen[idx] !== m) {
      lastSeen[idx] = m;
      df[idx] = (df[idx] as number) + 1;
    }
  };
  messages.forEach((text, m) => {
    if (latin.size > 0) {
      for (const w of latinWords(text)) {
        const idx = latin.get(w);
        if (idx !== undefined) hit(idx, m);
      }
    }
    for (let i = 0; i < text.length; i++) {
      let node = root.next.get(text.charCodeAt(i));
      for (let j = i + 1; node; j++) {
        if (node.term >= 0) hit(node.term, m);
        if (j >= text.length) break;
        node = node.next.get(text.charCodeAt(j));
      }
    }
  });
  return df;
}

export type QueryClass = "en" | "ja-1" | "ja-2" | "ja-3+";
export const QUERY_CLASSES: readonly QueryClass[] = ["en", "ja-1", "ja-2", "ja-3+"];
/** Upper bounds of the selectivity buckets (fraction of messages matched). */
export const BUCKETS = [0.001, 0.01, 0.1, 0.3] as const;

export interface QueryTerm {
  term: string;
  cls: QueryClass;
  /** Index into BUCKETS. */
  bucket: number;
  /** Messages the term matches (ground truth). */
  df: number;
}

/** Candidate terms of each class: vocabulary and function words, and every kanji of the vocabulary. */
export function candidates(): Record<QueryClass, string[]> {
  const kanji = new Set<string>();
  for (const w of JA_WORDS) for (const c of w) if (/\p{Script=Han}/u.test(c)) kanji.add(c);
  const len = (w: string) => [...w].length;
  return {
    en: EN_WORDS,
    "ja-1": [...kanji],
    "ja-2": [...JA_WORDS, ...JA_PARTICLES, ...JA_PREDICATES].filter((w) => len(w) === 2),
    "ja-3+": [...JA_WORDS, ...JA_PREDICATES].filter((w) => len(w) >= 3),
  };
}

/**
 * Up to `perCell` query terms for each (class, bucket), chosen by `seed` among the candidates
 * whose true match count falls in that bucket; terms matching more than the last bucket are not used.
 */
export function pickQueries(messages: readonly string[], perCell: number, seed: number): QueryTerm[] {
  const byClass = candidates();
  const all = QUERY_CLASSES.flatMap((cls) => byClass[cls].map((term) => ({ cls, term })));
  const df = documentFrequencies(
    messages,
    all.map((c) => c.term),
  );
  const rng = new Rng(seed);
  const out: QueryTerm[] = [];
  for (const cls of QUERY_CLASSES) {
    const cells: QueryTerm[][] = BUCKETS.map(() => []);
    all.forEach((c, i) => {
      if (c.cls !== cls) return;
      const n = df[i] as number;
      if (n === 0) return;
      const bucket = BUCKETS.findIndex((b) => n <= b * messages.length);
      if (bucket >= 0) cells[bucket]?.push({ term: c.term, cls, bucket, df: n });
    });
    for (const cell of cells) out.push(...rng.shuffle(cell).slice(0, perCell));
  }
  return out;
}
