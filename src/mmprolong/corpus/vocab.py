"""Word lists and sentence templates the documents are written from.

Templates carry named slots ({org}, {unit}, {product}, {year}, ...) that ``content.Writer`` fills from the
document's own topic, so two documents of one kind still read differently and a BPE tokenizer trained on the
corpus sees a realistic spread of words. Only characters of the PDF base-14 fonts' WinAnsi encoding appear.
Filler templates never state a value of an (entity, attribute) pair: only fact sentences do.
"""

from __future__ import annotations

ORG_NAMES = ("Northwind", "Bluefin", "Aster", "Calder", "Dunmore", "Elbridge", "Fairhaven", "Greystone",
             "Halvorsen", "Ironwood", "Juniper", "Kestrel", "Larkspur", "Meridian", "Norcross", "Oakridge",
             "Pinecrest", "Quillon", "Redfern", "Silverton", "Thornbury", "Upland", "Valemont", "Westbrook",
             "Ashcombe", "Brightwater", "Corrigan", "Drummond", "Everly", "Foxhall", "Glenmore", "Hartwell")
PLACES = ("Harbour", "Metro", "Valley", "Coastal", "Highland", "Lakeside", "Summit", "Prairie", "Delta",
          "Ridge", "Frontier", "Northern", "Southern", "Eastern", "Western", "Central", "Riverside",
          "Midlands", "Bayside", "Uplands", "Gateway", "Pacific", "Atlantic", "Alpine", "Capital", "Border")
SERIES = ("Orion", "Vega", "Lyra", "Atlas", "Nova", "Helix", "Polaris", "Zephyr", "Cobalt", "Falcon",
          "Granite", "Mistral", "Aurora", "Beacon", "Comet", "Horizon", "Keystone", "Lumen", "Meteor",
          "Pioneer", "Quasar", "Sierra", "Tempest", "Voyager", "Summit", "Cascade", "Ember", "Harrier")
FIRST_NAMES = ("Amina", "Bruno", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiroshi", "Ingrid", "Jonas",
               "Kavya", "Liam", "Marta", "Nikolai", "Olivia", "Pedro", "Qin", "Rosa", "Samuel", "Tara",
               "Umar", "Vera", "William", "Ximena", "Yusuf", "Zofia", "Aidan", "Beatrice", "Connor", "Dalia")
SURNAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Haddad", "Kowalski", "Silva", "Novak",
            "Fitzgerald", "Osei", "Larsen", "Castillo", "Nakamura", "Petrov", "Whitaker", "Rahman", "Duval",
            "Ferreira", "Johansson", "Mbeki", "Schneider", "Varga", "Oyelaran", "Sorensen", "Albright")
CITIES = ("Rotterdam", "Lyon", "Porto", "Gdansk", "Leeds", "Bilbao", "Aarhus", "Graz", "Tampere", "Cork",
          "Utrecht", "Bremen", "Turin", "Brno", "Ghent", "Malmo", "Nantes", "Krakow", "Seville", "Basel")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")

# An industry gives a report its business lines, customers and the words its paragraphs use.
INDUSTRIES = {
    "Logistics": dict(lines=("freight forwarding", "contract warehousing", "last-mile delivery",
                             "customs brokerage", "cold-chain transport", "port handling"),
                      customers=("retailers", "manufacturers", "e-commerce platforms", "food producers"),
                      assets=("distribution centres", "cross-dock terminals", "truck fleet", "rail sidings")),
    "Energy": dict(lines=("onshore wind", "solar parks", "grid services", "battery storage", "district heating",
                          "biogas plants"),
                   customers=("utilities", "industrial users", "municipalities", "household customers"),
                   assets=("substations", "turbine fleet", "transmission lines", "storage sites")),
    "Health": dict(lines=("diagnostic imaging", "outpatient clinics", "home care", "laboratory services",
                          "telemedicine", "rehabilitation"),
                   customers=("patients", "insurers", "public hospitals", "general practitioners"),
                   assets=("clinics", "laboratories", "imaging suites", "care homes")),
    "Foods": dict(lines=("dairy products", "bakery goods", "frozen meals", "plant-based foods", "beverages",
                         "snack brands"),
                  customers=("supermarket chains", "food-service operators", "convenience stores", "exporters"),
                  assets=("processing plants", "cold stores", "packing lines", "mills")),
    "Telecom": dict(lines=("fibre broadband", "mobile contracts", "enterprise networking", "cloud hosting",
                           "managed security", "data centres"),
                    customers=("households", "small businesses", "public agencies", "wholesale partners"),
                    assets=("base stations", "fibre routes", "exchanges", "server halls")),
    "Water": dict(lines=("drinking water supply", "network maintenance", "metering services",
                         "wastewater treatment", "desalination", "flood protection"),
                  customers=("municipalities", "industrial sites", "farmers", "household customers"),
                  assets=("treatment works", "pumping stations", "reservoirs", "sewer networks")),
    "Aerospace": dict(lines=("engine components", "avionics", "maintenance services", "cabin interiors",
                             "flight training", "ground support equipment"),
                      customers=("airlines", "aircraft manufacturers", "defence agencies", "leasing companies"),
                      assets=("machining centres", "test cells", "hangars", "simulators")),
    "Retail": dict(lines=("grocery stores", "online sales", "home furnishings", "pharmacy counters",
                          "private-label goods", "garden centres"),
                   customers=("families", "loyalty members", "small traders", "online shoppers"),
                   assets=("stores", "regional warehouses", "delivery vans", "click-and-collect points")),
    "Materials": dict(lines=("specialty chemicals", "industrial coatings", "recycled plastics", "glass fibre",
                             "adhesives", "construction aggregates"),
                      customers=("car makers", "builders", "packaging firms", "electronics assemblers"),
                      assets=("reactors", "quarries", "compounding lines", "blending plants")),
}

# Report: chapter titles (in reading order), the metrics each discusses, and its subsection titles.
REPORT_CHAPTERS = (
    ("Executive Summary", ("revenue", "operating margin", "headcount"),
     ("Highlights of the Year", "Strategic Progress", "Key Figures", "Message from the Board")),
    ("Market Environment", ("market share", "number of customers", "new contracts signed"),
     ("Economic Conditions", "Competitive Landscape", "Demand Trends", "Pricing", "Regulation")),
    ("Business Unit Performance", None, ()),
    ("Financial Review", ("revenue", "operating profit", "operating margin", "capital expenditure"),
     ("Revenue Development", "Profitability", "Investment", "Cost Structure", "Cash Flow", "Financing")),
    ("Customers and Markets", ("customer satisfaction score", "number of customers", "new contracts signed",
                               "market share"),
     ("Customer Base", "Service Quality", "Sales Channels", "Key Accounts", "Complaints Handling")),
    ("People and Culture", ("headcount", "employee turnover", "training hours per employee"),
     ("Workforce Overview", "Recruitment", "Training and Development", "Employee Engagement", "Diversity")),
    ("Health and Safety", ("recordable safety incidents", "training hours per employee"),
     ("Safety Performance", "Incident Review", "Safety Culture", "Contractor Safety")),
    ("Sustainability", ("CO2 emissions", "energy consumption", "share of waste recycled"),
     ("Climate Targets", "Energy Use", "Waste and Recycling", "Community Engagement", "Supply Chain")),
    ("Risk Management", ("operating margin", "capital expenditure"),
     ("Risk Framework", "Principal Risks", "Internal Controls", "Insurance")),
    ("Outlook", ("revenue", "headcount", "capital expenditure"),
     ("Priorities for the Coming Year", "Investment Plans", "Targets")),
)

REPORT_FILLER = (
    "The board reviewed these results at its quarterly meeting and endorsed the measures proposed by management.",
    "Demand from {customers} remained uneven across markets, reflecting local conditions and pricing pressure.",
    "{org} continued to invest in digital tools that shorten delivery times and improve service for {customers}.",
    "Compared with {prev_year}, costs were held broadly stable despite higher prices for energy and materials.",
    "Several initiatives launched in {prev_year} began to contribute to results during {year}.",
    "The figures in this chapter are unaudited and may be revised in the consolidated financial statements.",
    "Staff turnover declined after the introduction of a structured mentoring programme for new employees.",
    "Efficiency projects at the {asset} reduced energy consumption and lowered maintenance costs.",
    "The {line} business benefited from new framework agreements signed with {customers}.",
    "Management expects competition in {line} to intensify as new entrants target the same customer groups.",
    "A review of the supplier base led to fewer, longer contracts with clearer service-level commitments.",
    "{unit} opened two new {asset} during the year, adding capacity close to its main {customers}.",
    "Investment decisions are assessed against a hurdle rate that reflects the risk profile of each project.",
    "The integration of recently acquired businesses is progressing according to plan.",
    "Exchange rate movements had a limited effect on reported results, as most costs are incurred locally.",
    "Customer feedback is collected after every major delivery and reviewed monthly by the regional teams.",
    "Working capital improved as invoicing was automated and payment terms were harmonised.",
    "{org} maintains a conservative financing policy, with most debt at fixed rates and long maturities.",
    "The company renewed its certification for quality management after an external audit in {month}.",
    "Regulatory changes announced in {month} {year} are not expected to have a material effect on operations.",
    "A new enterprise resource planning system went live in {unit} in {month}, replacing three older systems.",
    "Price increases were passed on to {customers} gradually, in line with contractual indexation clauses.",
    "The shift towards {line} continued, supported by targeted marketing and a broader product range.",
    "Absenteeism remained low, and the latest engagement survey showed improved scores for leadership.",
    "Projects that did not meet their milestones were paused and their budgets reallocated.",
    "Cooperation with universities in {city} gives {org} access to graduates and applied research.",
    "The sustainability committee monitors progress against targets and reports to the board twice a year.",
    "Maintenance of the {asset} was brought forward to avoid disruption during the peak season.",
    "Cyber security remains a priority; all employees completed the annual awareness training.",
    "The outlook assumes stable economic conditions and no further disruption to supply chains.",
    "Insurance cover was reviewed and extended to include business interruption at the main {asset}.",
    "Local management teams were given greater autonomy over pricing and hiring decisions.",
    "Under the leadership of {person}, the procurement function consolidated spending across all units.",
    "Growth in {line} offset a slower year in {line2}, where several large contracts ended.",
)

REPORT_FACT_SENTENCES = (
    "The {metric} of {entity} reached {value}{when}.",
    "For {entity}, the {metric} stood at {value}{when}.",
    "According to internal data, the {metric} at {entity} amounted to {value}{when}.",
    "{When_cap}the {metric} at {entity} was {value}, as shown in the management accounts.",
    "{When_cap}the {metric} at {entity} came to {value}, in line with the plan approved by the board.",
    "Management accounts show the {metric} of {entity} at {value}{when}.",
    "{entity} reported the following {metric}{when}: {value}.",
    "{When_cap}the {metric} recorded by {entity} was {value}.",
    "The board noted that the {metric} of {entity} was {value}{when}.",
)
REPORT_STRING_SENTENCES = (
    "{Attribute} of {entity}: {value}.",
    "The {attribute} of {entity} is {value}.",
    "{entity} lists its {attribute} as {value}.",
)

MANUAL_FAMILIES = (
    ("centrifugal pump", "pump"), ("diaphragm valve", "valve"), ("screw compressor", "compressor"),
    ("plate heat exchanger", "heat exchanger"), ("industrial mixer", "mixer"), ("belt conveyor", "conveyor"),
    ("standby generator", "generator"), ("water chiller", "chiller"), ("filtration unit", "filter unit"),
    ("dosing pump", "dosing pump"),
)
MANUAL_COMPONENTS = ("mechanical seal", "inlet filter", "drive belt", "bearing set", "control board",
                     "pressure sensor", "impeller", "coupling insert", "cooling fan", "gasket kit", "oil filter",
                     "relief valve", "motor brush set", "air filter", "level switch", "display module",
                     "check valve", "drain valve", "fuse set", "temperature probe")
MANUAL_CHAPTERS = (
    ("Safety Information", ("maximum ambient temperature", "minimum clearance"),
     ("General Safety Rules", "Symbols Used in This Manual", "Personal Protective Equipment",
      "Residual Risks")),
    ("Product Overview", ("rated power", "flow rate", "weight", "efficiency", "maximum speed"),
     ("Intended Use", "Model Range", "Main Components", "Identification Plate")),
    ("Installation", ("minimum clearance", "mounting bolt torque", "supply voltage", "height", "width", "depth",
                      "inlet diameter", "outlet diameter", "shipping weight"),
     ("Unpacking and Inspection", "Site Requirements", "Mounting", "Electrical Connection",
      "Pipework Connection")),
    ("Technical Specifications", None, ()),
    ("Operation", ("start-up time", "maximum operating pressure", "noise level", "rated current"),
     ("Control Panel", "Starting the Unit", "Normal Operation", "Stopping the Unit", "Operating Modes")),
    ("Maintenance", ("replacement interval", "quantity per unit", "oil capacity", "service kit number"),
     ("Maintenance Schedule", "Daily Checks", "Replacing Wear Parts", "Lubrication", "Cleaning")),
    ("Troubleshooting", ("meaning", "remedy"),
     ("Fault Indicators", "Fault Codes", "Resetting Alarms", "Contacting Service")),
    ("Spare Parts", ("part number", "quantity per unit"),
     ("Ordering Spare Parts", "Parts List", "Service Kits")),
    ("Warranty and Service", ("warranty period",),
     ("Warranty Terms", "Service Network", "Disposal and Recycling")),
)
MANUAL_FILLER = (
    "Read all instructions before operating the {family} and keep this manual near the unit for reference.",
    "Disconnect the power supply and lock the isolator before opening the housing or replacing any part.",
    "Use only spare parts approved by {org}; other parts may reduce performance and void the warranty.",
    "Check all connections for leaks after installation and again after the first hour of operation.",
    "Operating the unit outside the specified range may cause damage to the equipment or personal injury.",
    "Clean the {component} regularly; a blocked {component} reduces performance and increases wear.",
    "Record every service operation in the maintenance log supplied with the unit.",
    "If an alarm persists after a restart, contact an authorised service centre.",
    "The unit must be installed on a level, rigid base that can carry its full operating weight.",
    "Only qualified electricians may connect the unit to the mains supply.",
    "Allow the unit to cool down before touching surfaces marked with the hot-surface symbol.",
    "Keep the area around the unit free of tools, packaging and other loose material.",
    "Tighten fasteners in a cross pattern to spread the clamping force evenly.",
    "After a long standstill, turn the shaft by hand to check that it moves freely before starting.",
    "Dispose of used oil and filters in accordance with local environmental regulations.",
    "The {component} is a wear part and is not covered by the standard warranty.",
    "Wear safety glasses and gloves when working on pressurised parts of the system.",
    "A copy of the declaration of conformity is available from {org} on request.",
    "The control system logs the last fifty events, which can be read out by service staff.",
    "Vibration that increases over time usually indicates worn bearings or an unbalanced rotor.",
    "Do not use high-pressure cleaners on electrical components or the control cabinet.",
    "The {family} is designed for continuous duty in indoor installations with adequate ventilation.",
    "Make sure the direction of rotation matches the arrow on the housing before commissioning.",
    "Replace damaged cables immediately; never repair them with insulating tape.",
)
MANUAL_FACT_SENTENCES = (
    "Data sheet values for the {entity} give a {metric} of {value}.",
    "Note that the {metric} of the {entity} is {value}; other models differ.",
    "The {metric} of the {entity} is {value}.",
    "For the {entity}, the {metric} is {value}.",
    "The {entity} has a {metric} of {value}.",
    "Observe the {metric} of {value} specified for the {entity}.",
    "On the {entity}, the {metric} must not differ from {value}.",
)
MANUAL_STRING_SENTENCES = (
    "The {metric} of the {entity} is {value}.",
    "For the {entity}, the {metric} is {value}.",
    "Where the {metric} is required, the {entity} is listed with {value}.",
)
# Procedure steps: make safe first, then the work itself (each step names its own object), then restore.
MANUAL_STEPS_START = ("Switch off the unit at the main isolator.", "Lock the isolator in the off position.",
                      "Wait until the unit has cooled down.", "Release the pressure from the system.",
                      "Close the inlet and outlet valves.", "Put on gloves and safety glasses.")
MANUAL_STEPS_WORK = ("Remove the retaining screws of the front cover.", "Lift off the front cover and set it aside.",
                     "Disconnect the cable of the {component}.", "Remove the {component} from its holder.",
                     "Inspect the {component} for cracks or wear.", "Clean the sealing faces with a lint-free cloth.",
                     "Fit the new {component} until it is seated.", "Apply a thin film of grease to the O-ring.",
                     "Tighten the retaining screws in a cross pattern.", "Check the oil level in the sight glass.",
                     "Drain the old oil into a suitable container.",
                     "Refill with the oil grade given in the data sheet.",
                     "Turn the shaft by hand to check that it moves freely.", "Check the tension of the drive belt.",
                     "Clean the ventilation openings with compressed air.", "Replace the gasket if it is damaged.",
                     "Measure the insulation resistance of the motor.", "Open the access hatch.",
                     "Compare the reading with the value in the specifications.",
                     "Mark the position of the {component}.")
MANUAL_STEPS_END = ("Refit the front cover.", "Reconnect the cable and check its routing.",
                    "Switch on the unit and check for leaks.",
                    "Run the unit for five minutes and listen for abnormal noise.",
                    "Reset the service counter on the control panel.", "Record the work in the maintenance log.",
                    "Close the access hatch and secure the latch.")
MANUAL_WARNINGS = ("Risk of electric shock. Isolate the supply before removing any cover.",
                   "Hot surfaces. Allow the unit to cool before maintenance.",
                   "Pressurised system. Release the pressure before opening any connection.",
                   "Rotating parts. Do not operate the unit with the guards removed.",
                   "Heavy load. Use suitable lifting equipment for transport and installation.",
                   "Risk of burns from hot liquids when draining the unit.")
FAULT_MEANINGS = ("Low inlet pressure", "Motor overload", "Sensor signal lost", "High oil temperature",
                  "Phase failure", "Filter blocked", "Overvoltage", "Communication timeout", "Dry running",
                  "Excessive vibration", "Door open", "Low supply voltage", "Drive fault", "Leak detected")
FAULT_REMEDIES = ("Check the supply line", "Reduce the load", "Check the cable", "Clean the cooler",
                  "Check the fuses", "Replace the filter", "Call service", "Restart the controller",
                  "Refill the system", "Inspect the bearings", "Close the door", "Check the mains supply")
CERTIFICATIONS = ("CE", "UKCA", "UL", "CSA", "ATEX", "IECEx", "EAC", "RoHS", "WEEE", "ISO 9001", "TUV")
IP_RATINGS = ("IP44", "IP54", "IP55", "IP65", "IP66", "IP67")

SLIDE_CHAPTERS = (
    ("Highlights", ("completion", "active users"), ()),
    ("Programme Status", ("completion", "milestones completed", "status", "defects closed"), ()),
    ("Budget and Spend", ("budget", "spend to date", "forecast at completion", "cost savings"), ()),
    ("Teams and Resourcing", ("team size", "project lead"), ()),
    ("Risks and Issues", ("open issues", "key risks", "change requests"), ()),
    ("Customer Feedback", ("active users", "net promoter score", "tickets resolved", "system availability"), ()),
    ("Roadmap", ("next milestone", "go-live date"), ()),
    ("Next Steps", ("open issues", "completion"), ()),
)
SLIDE_PROGRAMMES = ("Digital Transformation", "Customer Experience", "Operational Excellence",
                    "Supply Chain Renewal", "Data and Analytics", "Workplace Modernisation", "Growth Markets",
                    "Cloud Migration", "Net Zero Roadmap", "Product Innovation")
SLIDE_WORKSTREAMS = ("Customer Portal", "Mobile App", "Data Platform", "Warehouse Automation", "CRM Rollout",
                     "Billing Migration", "Network Upgrade", "Self-Service Kiosks", "Field Service App",
                     "Payroll Renewal", "Energy Monitoring", "Supplier Portal", "Analytics Hub", "Chatbot",
                     "E-Invoicing", "Fleet Telematics", "Identity Management", "Pricing Engine")
SLIDE_FILLER = (
    "Key milestones were reached on schedule across most workstreams",
    "Dependencies between teams remain the main source of delay",
    "User feedback from the pilot in {city} shaped the next release",
    "Hiring is on track; onboarding completes before the next review",
    "Budget reallocations were approved by the steering committee",
    "Risks are reviewed weekly and escalated when they hit the critical path",
    "Vendor contracts for the second phase are under negotiation",
    "Training for key users starts in {month}",
    "Data migration rehearsals found no blocking defects",
    "Two change requests were deferred to the next release",
    "Support hand-over to operations is planned for {month}",
    "Decision needed: scope of the {month} release",
    "Lessons learned from {workstream} are being applied across the programme",
    "Architecture review completed with minor findings",
    "Security testing is scheduled before go-live",
    "Stakeholder survey shows strong support from business units",
)
SLIDE_FACT_SENTENCES = (
    "{entity}: {metric} {value}{when}",
    "{entity} reports {metric} of {value}{when}",
    "{When_cap}{entity} {metric}: {value}",
    "{Metric} for {entity} reached {value}{when}",
    "{entity}, {metric}{when}: {value}",
)
SLIDE_STRING_SENTENCES = (
    "{Attribute} of {entity}: {value}",
    "{entity}: {attribute} is {value}",
)
SLIDE_STATUSES = ("on track", "at risk", "delayed", "completed", "in planning", "on hold")
SLIDE_RISKS = ("vendor delays", "data quality", "staff turnover", "budget overrun", "scope creep",
               "integration defects", "regulatory approval", "user adoption", "licence costs")
SLIDE_MILESTONES = ("pilot launch", "user acceptance testing", "data migration", "supplier selection",
                    "design sign-off", "national rollout", "security audit", "training completion")

# Sentence grammars: opener + subject + predicate + tail, thousands of combinations per kind, so filler
# rarely repeats within a document. Slots in braces are filled like the templates above.
REPORT_GRAMMAR = (
    ("", "During the year, ", "In the second half, ", "As in previous years, ", "Despite a difficult market, ",
     "Following the review in {month}, ", "At the request of the board, ", "Over the reporting period, ",
     "In most markets, ", "Compared with the plan, ", "From {month} onwards, ", "As announced in {prev_year}, "),
    ("{org}", "the group", "management", "{unit}", "the {line} business", "the regional teams",
     "the procurement function", "the finance department", "the sales organisation", "our team in {city}",
     "the sustainability committee", "the executive board", "the operations team at {unit}"),
    ("expanded the customer base among {customers}", "reduced overhead costs through shared services",
     "renegotiated key supplier contracts", "invested in new {asset}", "strengthened the market position in {line}",
     "completed the roll-out of a new planning system", "introduced stricter approval rules for capital projects",
     "launched a programme to retain experienced staff", "closed two loss-making {asset}",
     "improved the reliability of the {asset}", "reviewed pricing for {customers}",
     "simplified the reporting structure", "recruited specialists in data analysis",
     "agreed longer payment terms with {customers}", "lowered energy use at the {asset}",
     "updated the code of conduct", "tested new services with selected {customers}",
     "consolidated IT suppliers", "extended framework agreements with {customers}",
     "prepared the sale of a non-core activity", "modernised the {asset} in {city}",
     "set up a joint venture in {line}", "trained its managers in project delivery"),
    (".", ", as planned.", ", ahead of schedule.", ", although progress was slower than expected.",
     ", with support from external advisers.", ", which should benefit results in the coming years.",
     ", in line with the strategy presented in {prev_year}.", ", a step welcomed by {customers}.",
     " to prepare for growth in {line}.", ", partly offsetting weaker demand in {line2}."),
)
MANUAL_GRAMMAR = (
    ("", "Before maintenance, ", "During operation, ", "After installation, ", "If the unit has been stored, ",
     "When an alarm is shown, ", "At every service, ", "In cold environments, ", "For continuous duty, ",
     "After a power failure, ", "Once a year, "),
    ("check", "inspect", "verify", "examine", "record", "test"),
    ("the {component}", "all electrical connections", "the condition of the seals", "the oil level",
     "the pressure readings", "the alignment of the coupling", "the fastening of the base frame",
     "the ventilation openings", "the operating hours counter", "the earth connection", "the safety devices",
     "the cable entries", "the insulation of the motor", "the settings of the controller"),
    (".", " as described in this chapter.", " and record the result in the maintenance log.",
     " with the unit switched off.", " using the tools supplied with the {family}.",
     " according to the maintenance schedule.", " before the unit is returned to service.",
     " at least once a month.", " if the unit shows abnormal noise.", " and replace worn parts."),
)
SLIDE_GRAMMAR = (
    ("",),
    ("{workstream}", "The vendor", "The core team", "Operations", "Finance", "The design authority",
     "Pilot users in {city}", "The steering group", "Business owners", "The test team", "Procurement"),
    ("completed the design review", "confirmed the {month} go-live", "requested additional test time",
     "raised a change request", "signed off the data model", "escalated a resourcing gap",
     "started user training", "delivered the interface specification", "agreed the cut-over plan",
     "reported fewer defects", "reviewed the benefits case", "updated the release plan",
     "closed the audit findings", "onboarded two new suppliers"),
    ("", " this month", " ahead of plan", " after a short delay", " with minor findings", " for phase two",
     " in {month}"),
)
MANUAL_MAKERS = ("Industrial", "Engineering", "Machinery", "Fluid Systems", "Technologies", "Equipment",
                 "Process Solutions", "Drives")

# Archives of the large-print corpus' note cards and of the niah suite's needles: the 88 constellations.
ARCHIVES = (
    "Andromeda", "Antlia", "Apus", "Aquarius", "Aquila", "Ara", "Aries", "Auriga", "Bootes", "Caelum",
    "Camelopardalis", "Cancer", "Canes Venatici", "Canis Major", "Canis Minor", "Capricornus", "Carina",
    "Cassiopeia", "Centaurus", "Cepheus", "Cetus", "Chamaeleon", "Circinus", "Columba", "Coma Berenices",
    "Corona Australis", "Corona Borealis", "Corvus", "Crater", "Crux", "Cygnus", "Delphinus", "Dorado", "Draco",
    "Equuleus", "Eridanus", "Fornax", "Gemini", "Grus", "Hercules", "Horologium", "Hydra", "Hydrus", "Indus",
    "Lacerta", "Leo", "Leo Minor", "Lepus", "Libra", "Lupus", "Lynx", "Lyra", "Mensa", "Microscopium",
    "Monoceros", "Musca", "Norma", "Octans", "Ophiuchus", "Orion", "Pavo", "Pegasus", "Perseus", "Phoenix",
    "Pictor", "Pisces", "Piscis Austrinus", "Puppis", "Pyxis", "Reticulum", "Sagitta", "Sagittarius", "Scorpius",
    "Sculptor", "Scutum", "Serpens", "Sextans", "Taurus", "Telescopium", "Triangulum", "Triangulum Australe",
    "Tucana", "Ursa Major", "Ursa Minor", "Vela", "Virgo", "Volans", "Vulpecula",
)  # fmt: skip
