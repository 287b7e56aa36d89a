"""Write the BEIR-format help-desk dataset that ships with embedlens for `embedlens demo`.

An internal help desk. The knowledge-base articles are written in plain product language ("the
billing service"); employees ask in the company's jargon: codenames and nicknames ("Falcon", "the
Hive"), abbreviations ("PX", "perms", "pw", "RMAs"). The base model cannot know that Falcon is the
billing service, so it finds the right *kind* of article (access, outage, export...) but for a random
product. Every product has one article per topic and a codename means the same product in all of
them, so a query lens can learn codename -> product from the training questions, and what it learns
carries over to articles that no training question is about (the "unseen" test queries). Articles
name their product in one of two ways and only some say what it does; test questions use wordings
that no training question uses. A few distractors share a word with a codename in another sense
(the Falcon meeting room, the roof's bee hive) or are about things nobody asks.

Deterministic (seeded). Run: python tools/make_demo_data.py  (rewrites plugin/resources/demo/)
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "plugin" / "resources" / "demo"
SEED = 0
UNSEEN_PER_PRODUCT = 4  # of the 10 articles of each product, this many get test questions only
TRAIN_PER_ARTICLE = 4  # training questions per seen article (each article also gets one test question)
HINT_RATE = 0.3  # share of questions that also name something the product handles
DESCRIBE_RATE = 0.6  # share of articles that also say what the product does

# codename as employees type it | names in the articles | what it does | words some questions add
GLOSSARY = """
Falcon   | billing service; invoicing and subscriptions system | It issues invoices, charges cards and renews subscriptions. | invoices; charges
the Hive | shared team workspace; team collaboration space | It holds team boards, shared folders and discussion channels. | boards; channels
PX       | payments export job; nightly settlement export | It sends the nightly file of settled payments to accounting. | payments file; settlements
Nimbus   | desktop file sync client; laptop sync app | It keeps the files on your laptop in step with cloud storage. | sync; laptop files
Beacon   | alerting service; on-call paging system | It pages engineers when a monitored system fails. | paging; monitors
Quill    | document editor; collaborative writing tool | Contracts, proposals and specifications are written in it together. | docs; proposals
Orbit    | mobile sales app; field sales phone app | Field sales staff log customer visits and orders with it on their phones. | phone app; orders
Keystone | identity portal; company account manager | It manages company accounts, passwords and group memberships. | accounts; groups
Pulse    | analytics dashboard site; reporting site | It charts revenue, usage and churn for every team. | charts; metrics
Relay    | outbound e-mail gateway; customer mail delivery service | It delivers the e-mails that our products send to customers. | customer emails; bounces
Harbor   | warehouse inventory system; stock and shipping tracker | It tracks stock levels, shipments and customer returns. | stock; RMAs
Tempo    | timesheet tool; time tracking app | Staff record the hours they spend on each project in it every week. | hours; timesheets
Cobalt   | customer records database; customer relationship database | It stores each customer's contacts, contracts and history. | customer records; contacts
Juno     | support ticketing system; help-desk queue tool | Support agents answer customer tickets from its queues. | tickets; queues
"""

# topic | article title | article text, then an indented line of how employees ask (the last two
# wordings only in test questions); {p}: the product's plain name, {c}: its codename
TOPICS = """
overview | What the {p} is | An introduction to the {p}: what it is for, who uses it and where to find it.
  what is {c} | what does {c} do | new here, what's {c} | someone said to check {c}, what is that | what's {c} used for | explain {c} in one line | never heard of {c}, is it a tool? | {c} - which team uses it
access | Requesting access to the {p} | Access to the {p} is granted per team. Ask your manager to approve a request; the role is added within an hour.
  need perms for {c} | how do I get access to {c} | {c} says permission denied | who approves {c} access | {c} account for a new hire | no perms on {c}, pls help | can you add me to {c} | I can't see anything in {c}, do I need a role
login | Cannot sign in to the {p} | If signing in to the {p} fails, reset your password and clear the browser cookies. Accounts lock after five failed attempts.
  can't log into {c} | {c} pw not working | locked out of {c} | {c} login loop | {c} keeps rejecting my password | reset pw for {c} | {c} won't let me sign in | forgot my {c} password
slow | The {p} is slow | Slowness in the {p} is usually caused by large searches or a busy period. Narrow the date range; report it if pages take more than ten seconds.
  {c} super slow today | {c} laggy | why is {c} taking forever | {c} timing out | {c} takes ages to load | {c} perf is terrible | {c} is crawling | {c} pages spin for a minute
outage | Is the {p} down? | Check the status page for incidents affecting the {p}. During an outage work is queued and nothing is lost; do not retry in a loop.
  is {c} down | {c} not loading for anyone? | {c} outage? | {c} 500 errors everywhere | {c} dead again | anyone else seeing {c} broken | {c} unavailable right now? | {c} went down in the middle of my work
export | Exporting data from the {p} | Any list in the {p} can be downloaded as a CSV spreadsheet with the Export button. Exports over 100,000 rows are e-mailed as a ZIP file.
  dump {c} data to csv | export from {c} to excel | {c} csv download | pull a spreadsheet out of {c} | get my {c} data into sheets | {c} export stuck | {c} to spreadsheet | download a list from {c}
api | Connecting the {p} through the API | The {p} has a REST API. Create a token under Developer settings and call it from scripts or other tools; webhooks report changes.
  {c} api token | hook {c} up to slack | script against {c} | {c} webhook setup | does {c} have an api | integrate {c} with our tool | {c} REST endpoint docs | automate {c} with a script
restore | Restoring deleted items in the {p} | Deleted items stay in the trash of the {p} for 30 days and can be restored from there; after that, ask the owning team for a backup.
  undo delete in {c} | recover stuff I deleted in {c} | {c} lost my changes | accidentally removed something from {c} | {c} trash where | roll back {c} to yesterday | get back a deleted record in {c} | {c} recycle bin
alerts | Changing e-mail notifications from the {p} | Choose which events of the {p} send you an e-mail under Profile > Notifications, or switch to a daily digest.
  too many {c} emails | stop {c} notifications | mute {c} | {c} spamming me | turn off {c} alerts | daily digest for {c} | unsubscribe from {c} mails | {c} notifications are flooding my inbox
owner | Who owns the {p} and how to escalate | The team that owns the {p} is listed in the service catalogue. For urgent problems contact its on-call engineer; otherwise open a ticket.
  who owns {c} | escalate {c} issue | who's on call for {c} | {c} team contact | which team runs {c} | urgent {c} problem, who do I ping | {c} owner? | who maintains {c}
"""

# title | text: no question is about these
DISTRACTORS = """
Booking a meeting room | Rooms on the third floor are named Falcon, Harbor and Orbit. Book them in the calendar.
The rooftop bee hive | Volunteers look after the bee hive on the roof; the honey is shared out every autumn.
Quarterly pulse survey | The pulse survey asks how you feel about your work. Answers are anonymous.
Guest Wi-Fi | Visitors join the Nimbus-Guest network; the password is printed at reception.
Tempo of the release train | Product releases ship every two weeks on Tuesday; the freeze starts on Friday.
Submitting expense reports | Photograph receipts and submit them within 30 days; managers approve weekly.
Public holidays | The holiday calendar for each office is published in January.
Laptop replacement | Laptops are replaced every three years; order a new one from the hardware catalogue.
Parking permits | Parking permits are issued by facilities for one year at a time.
Booking business travel | Book flights and hotels through the travel desk at least two weeks ahead.
Security awareness training | Every employee completes the phishing course once a year.
Setting up a printer | Printers on each floor are added automatically; scan to e-mail from the touch screen.
"""


def rows(table: str) -> list[list[Any]]:
    """The ' | '-separated fields of each line of a table (an indented line continues the one above)."""
    out: list[list[Any]] = []
    for line in table.strip("\n").splitlines():
        fields = [f.strip() for f in line.split(" | ")]
        if line.startswith("  "):
            out[-1].append(fields)
        else:
            out.append(fields)
    return out


def main() -> None:
    rng = random.Random(SEED)
    topics = {t: (title, text, asks) for t, title, text, asks in rows(TOPICS)}
    corpus, queries, train, test = [], [], [], []

    def ask(doc_id: str, text: str, split: list[tuple[str, str]], hints: list[str]) -> None:
        if rng.random() < HINT_RATE:
            text = f"{text} ({rng.choice(hints)})"
        qid = f"q{len(queries) + 1:04d}"
        queries.append({"_id": qid, "text": text})
        split.append((qid, doc_id))

    for i, (code, names, what, hints) in enumerate(rows(GLOSSARY)):
        unseen = set(rng.sample(sorted(topics), UNSEEN_PER_PRODUCT))
        for j, (topic, (title, text, asks)) in enumerate(topics.items()):
            doc_id = f"kb{i + 1:02d}{j:02d}"
            name = rng.choice(names.split("; "))
            title, text = title.format(p=name), text.format(p=name)
            text = f"{text} {what}" if rng.random() < DESCRIBE_RATE else text
            corpus.append({"_id": doc_id, "title": title[0].upper() + title[1:], "text": text})
            ask(doc_id, rng.choice(asks[-2:]).format(c=code), test, hints.split("; "))  # never trained on
            if topic not in unseen:
                for a in rng.sample(asks[:-2], TRAIN_PER_ARTICLE):
                    ask(doc_id, a.format(c=code), train, hints.split("; "))
    for n, (title, text) in enumerate(rows(DISTRACTORS)):
        corpus.append({"_id": f"kb99{n:02d}", "title": title, "text": text})

    (OUT / "qrels").mkdir(parents=True, exist_ok=True)
    for name, records in (("corpus", corpus), ("queries", queries)):
        (OUT / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    for name, pairs in (("train", train), ("test", test)):
        lines = "".join(f"{qid}\t{doc_id}\t1\n" for qid, doc_id in sorted(pairs))
        (OUT / "qrels" / f"{name}.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines)


if __name__ == "__main__":
    main()
