// The native HTTP API's types, in one place: names for the schemas generated from
// the server's OpenAPI document (schema.d.ts, by `npm run gen:api`; never edit it by
// hand, `make test` fails when it is stale). The few types the document does not
// describe are written here by hand, and say so. The chat stream's events are in events.ts.
import type { components } from './schema';

type Schemas = components['schemas'];

// ---- Accounts ----
export type User = Schemas['UserPublic'];
export type Role = User['role'];
export type UserStatus = User['status'];
export type AuthConfig = Schemas['AuthConfig'];
export type SignupMode = AuthConfig['signup'];
export type UserEnvelope = Schemas['UserEnvelope'];
export type SignupIn = Schemas['SignupIn'];
export type LoginIn = Schemas['LoginIn'];
export type MeUpdate = Schemas['MeUpdate'];
export type ApiKey = Schemas['KeyPublic'];
export type CreatedApiKey = Schemas['KeyCreated'];
export type KeyList = Schemas['KeyList'];
export type KeyCreate = Schemas['KeyCreate'];
/** What `POST /api/me/import` added: counts per kind (`features.memory.memories`,
 * `features.knowledge.{collections, files, files_skipped}`), features turned off here. */
export type ImportReport = Schemas['ImportReport'];

/** The web app's own keys in the free-form `preferences` object. */
export type Theme = 'light' | 'dark' | 'system';

// ---- Models ----
export type ModelInfo = Schemas['ModelPublic'];
export type ModelList = Schemas['ModelList'];
export type LocalStatus = Schemas['LocalModelStatus']['status'];

// ---- Conversations and messages ----
export type Conversation = Schemas['ConversationPublic'];
export type ConversationPage = Schemas['ConversationPage'];
export type ConversationCreate = Schemas['ConversationCreate'];
export type ConversationUpdate = Schemas['ConversationUpdate'];
export type ConversationSummary = Schemas['SummaryPublic'];
export type SearchHit = Schemas['SearchHit'];
export type SearchResults = Schemas['SearchResults'];
export type MessageUpdate = Schemas['MessageUpdate'];

/** A chart or file a tool produced (the code interpreter), served by the backend. */
export type ToolAttachment = Schemas['StepAttachment'];
/** One tool call of an answer; until its result arrives only `id`, `name`,
 * `arguments` (the JSON text the model wrote) and perhaps `needs_confirmation` are set. */
export type ToolStep = Schemas['ToolStep'];

/** What an answer cites or used; `kind` tells the shapes apart. */
export type MessageSource = Message['sources'][number];
export type MemorySource = Schemas['MemorySource'];
export type ConversationSource = Schemas['ConversationSource'];
export type WebSource = Schemas['WebSource'];
/** A passage or whole file cited as `[ref]`; `ref` is null for a file that could not
 * be used (`mode` pending, failed, unsupported or image, with `status` and `detail`). */
export type FileSource = Schemas['FileSource'];

/** A stored message. */
export type Message = Schemas['MessagePublic'];
export type MessageStatus = Message['status'];
/** One model call of an answer: those that failed before it, then the one that answered. */
export type Attempt = Schemas['Attempt'];
export type ConversationDetail = Schemas['ConversationDetail'];

// ---- Chat turns (request bodies; the stream is in events.ts) ----
export type SendIn = Schemas['SendIn'];
export type RegenerateIn = Schemas['RegenerateIn'];
export type EditIn = Schemas['EditIn'];

// ---- Admin ----
export type AdminSettings = Schemas['InstanceSettings'];
export type AdminSettingsUpdate = Schemas['AdminSettingsUpdate'];
export type AdminUserCreate = Schemas['AdminUserCreate'];
export type AdminUserUpdate = Schemas['AdminUserUpdate'];
export type AdminPasswordResult = Schemas['AdminPasswordResult'];
export type UserList = Schemas['UserList'];
export type ProviderInfo = Schemas['ProviderInfo'];
export type ProviderSource = ProviderInfo['source'];
export type ProviderList = Schemas['ProviderList'];
export type ProviderCreate = Schemas['ProviderCreate'];
export type ProviderUpdate = Schemas['ProviderUpdate'];
export type ProviderTest = Schemas['ProviderTest'];
export type ModelSettings = Schemas['ModelSettings'];
export type ModelIn = Schemas['ModelIn'];
export type ProviderTestResult = Schemas['ProviderTestResult'];
/** Admin > Providers > Failover: every model's fallbacks, the providers' circuits. */
export type FailoverOverview = Schemas['FailoverOverview'];
// ---- Admin > Jobs (the durable job queue) and where files are stored ----
export type Job = Schemas['JobPublic'];
export type JobState = Job['state'];
export type JobList = Schemas['JobList'];
export type StorageSettings = Schemas['StoragePublic'];
export type FallbackEntry = Schemas['FallbackEntry'];
export type BreakerOut = Schemas['BreakerOut'];
/** Admin > Providers > Routing: the Auto model's rules per scope. */
export type RoutingOverview = Schemas['RoutingOverview'];
export type RoutingPolicy = Schemas['PolicyOut'];
export type RoutingRule = Schemas['RuleIO'];
export type PolicyUpdate = Schemas['PolicyUpdate'];
export type PolicyClear = Schemas['PolicyClear'];
/** How Auto chose an answer's model. */
export type Route = Schemas['RouteOut'];
/** Admin > Providers > Metrics and tracing. */
export type TelemetryOut = Schemas['TelemetryOut'];
export type TelemetryUpdate = Schemas['TelemetryUpdate'];

// ---- Files and knowledge ----
export type StoredFile = Schemas['FilePublic'];
export type UploadedFile = Schemas['UploadedFile'];
export type FileStatus = StoredFile['status'];
export type Passage = Schemas['Passage'];
export type Collection = Schemas['CollectionPublic'];
export type CollectionList = Schemas['CollectionList'];
export type StoredFileList = Schemas['FileList'];
export type ConversationKnowledge = Schemas['ConversationKnowledge'];

// ---- Memory ----
export type Memory = Schemas['MemoryPublic'];
export type MemoryList = Schemas['MemoryList'];
export type MemoryHistory = Schemas['MemoryHistory'];
export type MemoryVersion = Schemas['MemoryVersionPublic'];
export type ForgetRequest = Schemas['ForgetRequestPublic'];
export type MemoriesDeleted = Schemas['MemoriesDeleted'];

// ---- Tools and MCP ----
export type ToolInfo = Schemas['ToolPublic'];
export type ToolList = Schemas['ToolList'];
export type PendingCall = Schemas['ToolCallPublic'];
export type ToolCallList = Schemas['ToolCallList'];
export type McpTool = Schemas['McpToolPublic'];
export type McpServer = Schemas['McpServerPublic'];
export type McpServerList = Schemas['McpServerList'];
export type McpServerIn = Schemas['McpServerIn'];
export type WebSearchConfig = Schemas['WebSearchConfigPublic'];
export type WebSearchIn = Schemas['WebSearchIn'];
export type WebSearchTestResult = Schemas['WebSearchTestResult'];

// ---- Speech ----
export type SpeechStatus = Schemas['SpeechStatus'];
export type SpeechTranscript = Schemas['TranscriptOut'];
export type SpeechAdminView = Schemas['SpeechAdminView'];
export type SpeechAdminIn = Schemas['SpeechAdminIn'];
export type McpServerUpdate = Schemas['McpServerUpdate'];

/** An RFC 9457 problem document (every error answer). By hand: the document does
 * not declare error bodies. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
}

// ---- Assistants ----
export type Assistant = Schemas['AssistantPublic'];
export type AssistantConfig = Schemas['AssistantConfig'];
export type AssistantList = Schemas['AssistantList'];
export type AssistantVersion = Schemas['VersionPublic'];
export type AssistantVersionList = Schemas['VersionList'];
export type AssistantDiff = Schemas['AssistantDiff'];
export type AssistantFieldChange = Schemas['FieldChange'];
export type ChatAssistant = Schemas['ChatAssistant'];
export type ChatStarted = Schemas['ChatStarted'];

// ---- Images (parley.images) ----
export type Image = Schemas['ImagePublic'];
export type ImageList = Schemas['ImageList'];
export type ChatImages = Schemas['ChatImages'];
export type ImageSettings = Schemas['ImageSettings'];
export type ImageProvider = Schemas['ImageProviderPublic'];
export type ImageProviderList = Schemas['ImageProviderList'];
export type ImageProviderIn = Schemas['ImageProviderIn'];
export type ImageProviderPatch = Schemas['ImageProviderPatch'];
// ---- Groups, sharing, projects ----
export type Group = Schemas['GroupPublic'];
export type GroupList = Schemas['GroupList'];
export type GroupMember = Schemas['GroupMemberPublic'];
export type GroupMemberList = Schemas['GroupMemberList'];
export type GroupNames = Schemas['GroupNames'];
export type Share = Schemas['SharePublic'];
export type ShareList = Schemas['ShareList'];
export type ShareIn = Schemas['ShareIn'];
export type GalleryItem = Schemas['GalleryItem'];
export type GalleryList = Schemas['GalleryList'];
export type AssistantDocument = Schemas['AssistantDocument'];
export type AssistantImported = Schemas['Imported'];
export type AssistantPolicy = Schemas['PolicyPublic'];
export type AdminAssistantList = Schemas['AdminAssistantList'];
export type Project = Schemas['ProjectPublic'];
export type ProjectList = Schemas['ProjectList'];
export type ProjectFields = Schemas['ProjectFields'];
export type ProjectMember = Schemas['MemberPublic'];
export type ProjectMemberList = Schemas['MemberList'];
export type ProjectChatList = Schemas['ProjectChatList'];
export type ProjectChatStarted = Schemas['ProjectChatStarted'];
export type ProjectTranscript = Schemas['ProjectTranscript'];
export type ProjectFileList = Schemas['ProjectFileList'];
export type ProjectDocument = Schemas['ProjectDocument'];
export type ProjectImported = Schemas['ProjectImported'];
