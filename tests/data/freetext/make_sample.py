"""Generate the labelled free-text sample used by tests/deid/test_freetext_recall.py.

    .venv/bin/python tests/data/freetext/make_sample.py > tests/data/freetext/sample.json

Synthetic clinical snippets (adverse-event terms, medical history, comments) in Chinese and
English. Every identifier placed in a snippet is labelled with its character span, its kind
(name, phone, email, id_number, record_number), who it is (patient, family, doctor, nurse,
other) and its form (full, given, surname_title, ...), and whether the extract would pass it
to the scrubber explicitly (`known`: the subject's own name from the code index, staff names
from the accounts). Roughly a third of the snippets hold no identifier at all and are full of
common characters that are also surnames, to measure false positives. The name pools here are
independent of the scrubber's lexicon (some surnames are rare on purpose). Fixed seed, so the
output is reproducible; the committed sample.json is the output of this script.
"""

from __future__ import annotations

import json
import random
import re
import sys

SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 20261201  # another seed: a dev sample
rng = random.Random(SEED)

# surnames roughly by frequency, with some rare and compound ones
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴"
    "霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑"
    "景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
COMPOUND = [
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
    "司徒",
    "夏侯",
]
GIVEN = (
    "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰萍红建国文辉力鹏飞斌宇浩凯俊峰丹玲燕志新海波"
    "云亮林晨欣怡子涵梓轩诗琪雨佳宁博一嘉瑞思语晓东春梅淑珍凤兴利德福荣婷婷雪颖倩琳慧君琴蓉月莉翠珊"
    "立祥宏达永健忠诚胜美惠金宝才长家彬晶昊天然泽昕悦彤"
)
REL = [
    "儿子",
    "女儿",
    "妻子",
    "丈夫",
    "母亲",
    "父亲",
    "哥哥",
    "姐姐",
    "孙女",
    "儿媳",
    "女婿",
    "外甥",
]
TITLE_D = ["医生", "主任", "大夫", "教授", "医师"]
TITLE_N = ["护士", "护士长"]
EN_FIRST = ["John", "Mary", "David", "Sarah", "Michael", "Emma", "James", "Linda", "Robert", "Anna"]
EN_LAST = ["Smith", "Brown", "Johnson", "Miller", "Davis", "Wilson", "Taylor", "Clark", "Lewis"]
PINYIN = {
    "王": "Wang",
    "李": "Li",
    "张": "Zhang",
    "刘": "Liu",
    "陈": "Chen",
    "杨": "Yang",
    "黄": "Huang",
    "赵": "Zhao",
    "吴": "Wu",
    "周": "Zhou",
    "徐": "Xu",
    "孙": "Sun",
}
PY_GIVEN = ["Wei", "Fang", "Min", "Jing", "Lei", "Yang", "Jun", "Hong", "Ming", "Hui", "Xiaoming"]


def zh_name(compound_share: float = 0.04) -> tuple[str, str, str]:
    """(full, surname, given)"""
    if rng.random() < compound_share:
        sur = rng.choice(COMPOUND)
    else:
        sur = SURNAMES[min(int(rng.expovariate(1 / 40)), len(SURNAMES) - 1)]
    n = 1 if rng.random() < 0.35 else 2
    given = "".join(rng.choice(GIVEN) for _ in range(n))
    if n == 2 and rng.random() < 0.1:
        given = given[0] * 2  # reduplicated, e.g. 婷婷
    return sur + given, sur, given


STAFF_D = [zh_name(0) for _ in range(12)]
STAFF_N = [zh_name(0) for _ in range(8)]
STAFF_EN = [f"{PINYIN[s]} {rng.choice(PY_GIVEN)}" for s in rng.sample(sorted(PINYIN), 6)]


def id_number() -> str:
    area = rng.choice(["110105", "310104", "440304", "510107", "420106", "320102"])
    y, m, d = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
    body = f"{area}{y}{m:02d}{d:02d}{rng.randint(0, 999):03d}"
    w = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * x for c, x in zip(body, w, strict=True)) % 11]


def phone() -> str:
    n = f"1{rng.choice('3456789')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"
    style = rng.random()
    if style < 0.5:
        return n
    if style < 0.7:
        return f"{n[:3]}-{n[3:7]}-{n[7:]}"
    if style < 0.8:
        return f"+86 {n[:3]} {n[3:7]} {n[7:]}"
    area = rng.choice(["010", "021", "0755", "028", "027"])
    return f"{area}-{rng.randint(2, 8)}{rng.randint(0, 9999999):07d}"[: len(area) + 9]


def email(sur: str = "") -> str:
    user = rng.choice(["zhang.san", "liwei88", "wang_fang", "chenmin", "yang.lei", "patient01"])
    return f"{user}@{rng.choice(['163.com', 'qq.com', 'hospital.example.cn', 'gmail.com'])}"


def mrn() -> tuple[str, str]:
    label = rng.choice(["住院号", "病案号", "门诊号", "病历号", "MRN"])
    sep = rng.choice(["：", ":", " ", ""])
    return f"{label}{sep}", f"{rng.choice(['', 'ZY', 'H'])}{rng.randint(100000, 99999999)}"


# Chinese templates with names / numbers. Slots:
# {P} patient full name, {Pg} patient's given name (2 chars), {F} family member (full name),
# {Fx} family member as 小/阿 + given name, {D} doctor full name, {Dt} doctor surname + title,
# {N} nurse full name, {Nt} nurse surname + title, {O} someone outside the study (full name),
# {R} a relation word, {PH} phone, {EM} e-mail, {ID} resident ID, {MRN} record number.
ZH = [
    "患者{P}因头晕、乏力3天就诊，血压160/95 mmHg。",
    "受试者{P}于第2周期出现皮疹，CTCAE 2级，{D}评估与研究药物可能相关。",
    "{P}，男，62岁，既往高血压病史10年，糖尿病史5年。",
    "患者{R}{F}代为签署知情同意书，联系电话{PH}。",
    "{Dt}查房：患者一般情况可，继续当前方案治疗。",
    "由{N}完成采血，白细胞计数4.2×10^9/L。",
    "{Nt}记录：体温37.8℃，已通知值班医生。",
    "患者自述服药后恶心，{D}建议减量观察。",
    "家属{F}（{R}）来电询问随访安排，已告知下次访视时间。",
    "不良事件：肝功能异常（ALT升高），报告人{D}。",
    "AE描述：{P}于2023-06-12夜间出现胸闷，急诊心电图未见ST段改变。",
    "患者{P}的{R}{F}陪同就诊，诉患者近一周食欲差。",
    "主管医生：{D}；责任护士：{N}。",
    "{P}拒绝继续参加研究，{Dt}已记录退出原因。",
    "患者联系方式：{PH}，邮箱{EM}。",
    "身份证号{ID}，与筛选期登记一致。",
    "{MRN}，转入心内科继续治疗。",
    "外院{O}医生会诊意见：建议完善冠脉CTA。",
    "{Pg}今日精神好转，可下床活动。",
    "患者{R}{Fx}表示同意继续随访。",
    "随访电话已拨打{PH}，{F}接听，称患者已出院。",
    "SAE：{P}因肺部感染住院，{D}于24小时内上报伦理委员会。",
    "研究护士{N}发现给药记录缺失，已与{Dt}核实。",
    "{P}主诉双下肢水肿，查体：双下肢凹陷性水肿。",
    "请{Dt}复核实验室检查结果，黄疸指数偏高。",
    "{D}、{N}参与本次访视。",
    "患者{P}（{MRN}）今日完成第3次访视。",
    "知情同意由{D}讲解，{P}本人签字。",
    "受试者家属{F}要求复印病历，联系方式{EM}。",
    "{Dt}与{Nt}共同核对研究药物编号。",
    "患者称{R}{F}也有类似症状。",
    "给药后30分钟{P}出现寒战，予异丙嗪对症处理后缓解。",
    "数据核查：{P}的出生日期与身份证{ID}不一致，已发质疑。",
    "患者{P}电话{PH}无人接听，失访。",
    "{N}：患者夜间睡眠差，予安慰。",
    "既往史：{P}曾于2019年行阑尾切除术，无药物过敏史。",
    "转诊至{O}主任处进一步诊治。",
    "紧急联系人：{F}，{PH}。",
    "{P}诉头痛，{Dt}嘱监测血压，必要时加用氨氯地平。",
    "患者{Pg}说最近睡不好，已建议心理科就诊。",
    "护理记录：{Nt}协助{P}翻身、拍背。",
    "伦理审查意见已由{D}转交申办方。",
    "{P}的{R}反映患者近期情绪低落。",
    "入组筛选：{P}，{MRN}，符合全部入选标准。",
    "医嘱：{D}开具头孢曲松2g静滴qd。",
    "监查员发现{P}的访视窗超窗2天，{D}已说明原因。",
    "患者{P}于门诊复查，白细胞、血小板正常。",
    "{F}称患者{P}在家中跌倒，已嘱尽快来院。",
    "高血压控制不佳，{Dt}调整方案为缬沙坦联合氨氯地平。",
    "随访：{P}，电话{PH}，邮箱{EM}，地址已核对。",
]
# English templates. {EP} patient (pinyin or Western, known), {ED} staff in pinyin (known),
# {EDt} Dr./Nurse + staff surname (known), {EF} family member (unknown), {ET} Mr./Mrs. + someone
EN = [
    "Patient {EP} reported nausea after the second dose; {EDt} reduced the dose.",
    "AE: grade 2 rash on day 14, assessed by {EDt} as possibly related.",
    "Subject {EP} was contacted by phone ({PH}) about the missed visit.",
    "Informed consent explained by {ED}; signed by the patient and witnessed by {EF}.",
    "{ET} called to say the patient was admitted elsewhere.",
    "Please ask {EDt} to review the ECG; contact {EM}.",
    "Patient {EP} withdrew consent on 2023-04-02.",
    "SAE reported by {ED} within 24 hours; the patient's wife {EF} was informed.",
    "Headache and dizziness, resolved without treatment. Seen by {EDt}.",
    "{EP} says the new tablets are easier to swallow.",
]
ZH_FREE = [
    "高血压病史10年，规律服用氨氯地平，血压控制可。",
    "白细胞计数升高，考虑细菌感染，予头孢曲松抗感染治疗。",
    "皮肤巩膜黄染，黄疸指数升高，肝功能异常。",
    "按方案第3周期给药，未见不良事件。",
    "既往史：糖尿病史5年，无手术史，无过敏史。",
    "患者诉乏力、食欲减退，查体未见明显异常。",
    "石膏固定右前臂，嘱2周后复查X线。",
    "高热39.2℃，予物理降温及对乙酰氨基酚口服。",
    "白蛋白28 g/L，予人血白蛋白静滴。",
    "金属异物取出术后，伤口愈合良好。",
    "万古霉素谷浓度15 mg/L，维持原剂量。",
    "华法林抗凝，INR 2.3，在目标范围内。",
    "方向感差，定向力障碍，请神经内科会诊。",
    "龙胆泻肝汤加减，每日一剂。",
    "林可霉素过敏史。",
    "常规复查血常规、肝肾功能、电解质。",
    "于2023年3月行冠脉支架植入术，术后规律双抗。",
    "何时开始出现症状患者不能确切回忆。",
    "全血细胞减少，骨髓穿刺示增生低下。",
    "包块质硬，边界不清，活动度差。",
    "康复科评估后开始下肢功能锻炼。",
    "严重不良事件已于24小时内上报。",
    "毛细血管再充盈时间小于2秒。",
    "管床医生已告知检查注意事项。",
    "值班医生查看患者后予吸氧处理。",
    "全科医生建议转诊上级医院。",
    "责任护士完成入院宣教。",
    "主治医师查房，同意目前诊疗方案。",
    "心电图：窦性心律，T波低平。",
    "胸部CT示右下肺斑片影，考虑肺炎。",
    "尿常规：尿蛋白++，潜血+。",
    "血钾3.1 mmol/L，予口服补钾。",
    "甲状腺功能正常，TSH 2.1 mIU/L。",
    "双肺呼吸音粗，未闻及干湿啰音。",
    "空腹血糖7.8 mmol/L，糖化血红蛋白7.2%。",
    "马兜铃酸肾病可能，建议肾穿刺。",
    "杜冷丁50mg肌注止痛。",
    "温度计测得腋温37.5℃。",
    "程序性死亡受体-1抑制剂治疗第4周期。",
    "江浙一带流行病学史阴性。",
    "白癜风病史，未规律治疗。",
    "高钾血症，予降钾治疗后复查正常。",
    "黄体酮注射后出现局部红肿。",
    "钱币状湿疹，外用激素软膏。",
    "史蒂文斯-约翰逊综合征可能，立即停药。",
    "易疲劳，活动耐量下降。",
    "许可使用的伴随用药见附表。",
    "向患者解释病情及预后。",
    "余无特殊。",
    "田字格视力表检查视力0.8。",
    "肝区叩痛阴性，墨菲征阴性。",
    "丁型肝炎病毒抗体阴性。",
    "孔源性视网膜脱离术后。",
    "戴眼镜矫正视力1.0。",
    "夏季症状加重，冬季缓解。",
    "钟摆样眼震，请眼科会诊。",
    "任何时间出现胸痛立即就诊。",
    "车祸外伤史，左股骨骨折内固定术后。",
    "卫生宣教已完成，家属表示理解。",
    "米索前列醇200μg口服。",
    "甘露醇125ml静滴脱水降颅压。",
    "雷贝拉唑20mg qd口服。",
    "苏打水漱口预防口腔溃疡。",
    "秦皮、黄连外洗。",
    "花粉过敏史，春季鼻塞流涕。",
    "申请增加一次计划外访视。",
    "边缘性人格障碍病史。",
    "安眠药服用史，近期已停用。",
    "齐多夫定相关贫血可能。",
    "宁心安神颗粒口服。",
    "洪脉，舌红苔黄。",
    "路易体痴呆待排。",
    "牛皮癣病史20年。",
    "肖像权相关问题已由申办方回复。",
    "曾因心肌梗死住院，支架植入术后。",
    "患者家属表示理解并同意继续治疗。",
    "受试者本人签署知情同意书。",
    "研究护士完成给药及生命体征监测。",
    "申办方监查员完成原始数据核查。",
    "患者于访视3出现轻度腹泻，自行缓解。",
    "方案偏离：访视超窗3天，已报告伦理委员会。",
    "复查肌酐、尿素氮正常。",
    "左侧胸腔积液，行胸腔穿刺抽液。",
    "考虑药物性肝损伤，暂停研究药物。",
    "血常规示白细胞3.2×10^9/L，中性粒细胞减少。",
    "头颅MRI未见急性梗死灶。",
    "予甲泼尼龙40mg静滴。",
    "过敏性休克，予肾上腺素肌注后好转。",
    "患者睡眠改善，情绪稳定。",
]
EN_FREE = [
    "Grade 1 nausea, resolved without treatment.",
    "History of hypertension for 10 years, on amlodipine.",
    "Jaundice and elevated bilirubin; liver function tests repeated.",
    "Dr. visit postponed due to holiday; rescheduled within the window.",
    "White blood cell count within normal range.",
    "Patient reports mild headache after infusion.",
    "Mr. and Mrs. forms were not applicable to this subject.",
    "Protocol deviation: visit 4 out of window by 2 days.",
]

# Name-free snippets written after the scrubber's rules and clinical word list were settled and
# never used to tune them: the precision stated in docs/deid.md is measured on these too.
ZH_HELDOUT = [
    "双侧瞳孔等大等圆，对光反射灵敏。",
    "腹软，无压痛及反跳痛，肝脾肋下未及。",
    "左下肺闻及少许湿啰音，予加强抗感染。",
    "血压波动较大，加用美托洛尔缓释片。",
    "高尿酸血症，予非布司他降尿酸治疗。",
    "白天嗜睡，夜间易醒，予唑吡坦睡前口服。",
    "黄色脓痰，痰培养示肺炎克雷伯菌。",
    "金标准为病理活检。",
    "石淋病史，曾行体外冲击波碎石。",
    "林格液500ml静滴。",
    "方便时复查甲功五项。",
    "史上最长的一次住院为2015年。",
    "马来酸依那普利10mg qd。",
    "胡椒粉过敏，进食后出现荨麻疹。",
    "郭氏征阴性。",
    "何种原因导致血小板减少尚不明确。",
    "高龄患者，注意跌倒风险。",
    "罗马III标准诊断肠易激综合征。",
    "郑重告知患者及家属手术风险。",
    "梁柱状结构未见异常。",
    "谢绝探视，实行保护性隔离。",
    "宋体打印的知情同意书已归档。",
    "唐氏综合征筛查低风险。",
    "许多患者在用药初期出现轻度头晕。",
    "韩国产同类药物未在国内上市。",
    "冯氏评分为3分。",
    "邓普顿量表评分正常。",
    "曹操样面容，考虑库欣综合征。",
    "彭大海含片缓解咽痛。",
    "曾经吸烟20年，已戒烟5年。",
    "肖氏试验阳性。",
    "田野作业史，注意恙虫病。",
    "董事会决议与本研究无关。",
    "袁枚食单不适用。",
    "潘生丁负荷试验阴性。",
    "于右侧腹股沟触及肿大淋巴结。",
    "蒋氏分级为II级。",
    "蔡司眼镜片验光结果见附件。",
    "余下疗程按原计划进行。",
    "杜绝院内交叉感染。",
    "叶酸片0.4mg每日一次。",
    "程度较前减轻。",
    "苏醒后诉轻度恶心。",
    "魏氏法血沉35 mm/h。",
    "吕氏评分不适用。",
    "丁字尺测量下肢长度差1cm。",
    "任意时间血糖11.3 mmol/L。",
    "沈默寡言，情绪低落，请心理科会诊。",
    "姚期不适用本方案。",
    "卢戈氏碘液染色阴性。",
    "姜汁贴敷缓解恶心。",
    "崔化试验未做。",
    "钟点工照护，家庭支持一般。",
    "谭腿等剧烈运动暂缓。",
    "陆续出现双下肢乏力。",
    "汪洋般的胸腔积液已引流。",
    "范围约3cm×2cm的低密度影。",
    "金黄色渗出物，送细菌培养。",
    "石蜡油灌肠后排便。",
    "廖廖数语，交流困难。",
]
EN_HELDOUT = [
    "Mild jaundice noted on day 3; bilirubin 45 umol/L.",
    "Dose held for grade 3 neutropenia; resumed at the next cycle.",
    "History of Crohn Disease, in remission.",
    "Seen by Emergency Department staff overnight; no admission.",
    "Parkinson Disease diagnosed in 2018, on levodopa.",
]


def fill(template: str, lang: str) -> dict:
    pat_full, pat_sur, pat_given = zh_name()
    fam = zh_name()
    other = zh_name()
    doc = rng.choice(STAFF_D)
    nurse = rng.choice(STAFF_N)
    en_pat = (
        f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"
        if rng.random() < 0.5
        else f"{PINYIN[rng.choice(sorted(PINYIN))]} {rng.choice(PY_GIVEN)}"
    )
    en_staff = rng.choice(STAFF_EN)
    text = ""
    spans: list[dict] = []
    subject_names = [en_pat] if lang == "en" else [pat_full]

    def add(
        s: str,
        kind: str,
        who: str,
        form: str,
        known: bool,
        offset: int = 0,
        length: int | None = None,
    ) -> None:
        nonlocal text
        start = len(text) + offset
        end = start + (len(s) - offset if length is None else length)
        spans.append(
            {
                "start": start,
                "end": end,
                "kind": kind,
                "who": who,
                "form": form,
                "known": known,
                "value": s[offset : end - len(text)],
            }
        )
        text += s

    for part in re.split(r"(\{[A-Za-z]+\})", template):
        slot = part[1:-1] if part.startswith("{") else None
        if slot is None:
            text += part
        elif slot == "P":
            add(pat_full, "name", "patient", "full", True)
        elif slot == "Pg":
            given = pat_given if len(pat_given) == 2 else pat_given + rng.choice(GIVEN)
            if given != pat_given:  # keep the sample consistent: the given name is the subject's
                pat_full = pat_sur + given
                subject_names = [pat_full]
            add(given, "name", "patient", "given", True)
        elif slot == "F":
            add(fam[0], "name", "family", "full", False)
        elif slot == "Fx":
            g = fam[2][-1]
            add(rng.choice(["小", "阿"]) + g, "name", "family", "given", False)
        elif slot == "D":
            add(doc[0], "name", "doctor", "full", True)
        elif slot == "Dt":
            add(
                doc[1] + rng.choice(TITLE_D),
                "name",
                "doctor",
                "surname_title",
                True,
                length=len(doc[1]),
            )
        elif slot == "N":
            add(nurse[0], "name", "nurse", "full", True)
        elif slot == "Nt":
            add(
                nurse[1] + rng.choice(TITLE_N),
                "name",
                "nurse",
                "surname_title",
                True,
                length=len(nurse[1]),
            )
        elif slot == "O":
            add(other[0], "name", "other", "full", False)
        elif slot == "R":
            text += rng.choice(REL)
        elif slot == "PH":
            add(phone(), "phone", "", "", False)
        elif slot == "EM":
            add(email(), "email", "", "", False)
        elif slot == "ID":
            add(id_number(), "id_number", "", "", False)
        elif slot == "MRN":
            label, num = mrn()
            text += label
            add(num, "record_number", "", "", False)
        elif slot == "EP":
            add(en_pat, "name", "patient", "full", True)
        elif slot == "ED":
            add(en_staff, "name", "doctor", "full", True)
        elif slot == "EDt":
            title = rng.choice(["Dr. ", "Dr ", "Nurse "])
            sur = en_staff.split()[0]
            add(title + sur, "name", "doctor", "surname_title", True, offset=len(title))
        elif slot == "EF":
            add(f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}", "name", "family", "full", False)
        elif slot == "ET":
            title = rng.choice(["Mr. ", "Mrs. ", "Ms. "])
            add(
                title + rng.choice(EN_LAST),
                "name",
                "family",
                "surname_title",
                False,
                offset=len(title),
            )
        else:
            raise KeyError(slot)
    for s in spans:
        assert text[s["start"] : s["end"]] == s["value"], (text, s)
    return {"lang": lang, "text": text, "subject_names": subject_names, "spans": spans}


def main() -> None:
    snippets = []
    for _ in range(4):
        snippets += [fill(t, "zh") for t in ZH]
    for _ in range(4):
        snippets += [fill(t, "en") for t in EN]
    snippets += [fill(t, "zh") for t in ZH_FREE] + [fill(t, "en") for t in EN_FREE]
    held_out = [fill(t, "zh") for t in ZH_HELDOUT] + [fill(t, "en") for t in EN_HELDOUT]
    for x in held_out:
        x["held_out"] = True
    snippets += held_out
    rng.shuffle(snippets)
    staff = [d[0] for d in STAFF_D] + [n[0] for n in STAFF_N] + STAFF_EN
    out = {"seed": SEED, "staff_names": staff, "snippets": snippets}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
